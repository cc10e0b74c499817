"""The Model Store page's pure helpers: reading a ``GET /model-store`` item as a card (metadata on
the item beside the folder's keys, the definition's error) and the search/task/category filter."""

from __future__ import annotations

from workbay.web.routes.model_store import cards_of, distinct, folder_link, matches, model_card

LLAMA = {"folder_id": "f1", "name": "llama", "host": "local:volume1", "model_name": "Llama-3",
         "title": "meta-llama/Llama-3", "author": "meta", "description": "Dialogue LLM",
         "task": "text-generation", "category": "huggingface", "architecture": "LlamaForCausalLM",
         "framework": "transformers, vllm", "label": ["meta", "llama"], "license": "llama3",
         "version": "3", "created": "2024-04-17", "last_modified": "2024-05-29",
         "min_resource": {"cuda.shares": "2.4"}, "definition_file": "model-definition.yaml",
         "definition_error": None}


def test_a_card_reads_the_metadata_and_the_folder():
    card = model_card(LLAMA)
    assert (card.folder_id, card.folder_name, card.host) == ("f1", "llama", "local:volume1")
    assert card.heading == "meta-llama/Llama-3" and card.model_name == "Llama-3"
    assert card.framework == ("transformers", "vllm") and card.labels == ("meta", "llama")
    assert (card.task, card.category, card.license, card.version) == ("text-generation", "huggingface", "llama3", "3")
    assert card.min_resource == {"cuda.shares": "2.4"} and card.error == ""


def test_an_invalid_definition_keeps_its_error_and_the_folder_name_as_heading():
    card = model_card({"folder_id": "f3", "name": "broken",
                       "definition_error": "model-definition.yaml, line 3: models[0].service.port: must be an integer"})
    assert card.heading == "broken" and "models[0].service.port" in card.error


def test_the_managers_card_shape():
    card = model_card({"folder_id": "ab12", "name": "llama", "host": "local:volume1", "model_name": "Llama-3",
                       "title": None, "framework": "transformers", "label": ["x"], "min_resource": {"cpu": "2"},
                       "definition_error": None})
    assert (card.folder_id, card.folder_name, card.host, card.heading) == ("ab12", "llama", "local:volume1", "Llama-3")
    assert card.framework == ("transformers",) and card.labels == ("x",) and card.error == ""
    assert model_card({"folder_id": "c", "name": "bad", "definition_error": "line 2: x"}).error == "line 2: x"


def test_cards_of_reads_items_and_sorts_by_heading():
    listed = cards_of({"items": [{"folder_id": "2", "title": "beta"}, {"folder_id": "1", "title": "Alpha"}]})
    assert [c.heading for c in listed] == ["Alpha", "beta"]
    assert cards_of({"items": []}) == []


def test_filters():
    llama = model_card(LLAMA)
    other = model_card({"folder_id": "x", "title": "Whisper", "task": "speech", "category": "audio"})
    assert matches(llama, "", "", "")
    assert matches(llama, "LLAMA", "", "") and matches(llama, "dialogue", "", "") and matches(llama, "meta", "", "")
    assert not matches(other, "llama", "", "")
    assert matches(llama, "", "text-generation", "") and not matches(other, "", "text-generation", "")
    assert matches(other, "", "", "audio") and not matches(llama, "", "", "audio")
    assert not matches(llama, "llama", "text-generation", "audio")
    assert distinct([llama, other, llama], "task") == ["speech", "text-generation"]


def test_the_folder_link_opens_the_models_tab_filtered():
    assert folder_link("my copy") == "/data?tab=models&q=my+copy"
