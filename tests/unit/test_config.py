"""Configuration: TOML file + WORKBAY_* environment overrides; unknown keys fail readably."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbay.common.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("WORKBAY_"):
            monkeypatch.delenv(key)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workbay.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg.manager.port == 8091 and cfg.webserver.port == 8090
    assert cfg.manager.signup_enabled is False and cfg.manager.default_rate_limit == 10000
    assert cfg.redis.url == "" and cfg.db.url == ""
    assert cfg.db_url.startswith("sqlite+aiosqlite:///") and cfg.db_url.endswith("workbay.db")


def test_toml_file_is_read(tmp_path):
    path = write(tmp_path, """
data_dir = "/srv/workbay"
[manager]
host = "0.0.0.0"
port = 9001
signup_enabled = true
[db]
url = "postgresql+asyncpg://u@h/db"
[redis]
url = "redis://127.0.0.1:6379/3"
""")
    cfg = load_config(path)
    assert cfg.data_dir == Path("/srv/workbay")
    assert (cfg.manager.host, cfg.manager.port, cfg.manager.signup_enabled) == ("0.0.0.0", 9001, True)
    assert cfg.db_url == "postgresql+asyncpg://u@h/db"
    assert cfg.redis.url == "redis://127.0.0.1:6379/3"
    assert cfg.webserver.port == 8090          # sections not in the file keep their defaults


def test_environment_overrides_the_file_key_by_key(tmp_path, monkeypatch):
    path = write(tmp_path, '[manager]\nhost = "0.0.0.0"\nport = 9001\n')
    monkeypatch.setenv("WORKBAY_MANAGER__PORT", "9100")
    monkeypatch.setenv("WORKBAY_DB__URL", "sqlite+aiosqlite:///x.db")
    cfg = load_config(path)
    assert cfg.manager.port == 9100            # from the environment
    assert cfg.manager.host == "0.0.0.0"       # still from the file
    assert cfg.db.url == "sqlite+aiosqlite:///x.db"


def test_explicit_overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("WORKBAY_MANAGER__PORT", "9100")
    assert load_config(manager={"port": 9200}).manager.port == 9200


def test_the_file_is_not_remembered_between_loads(tmp_path):
    load_config(write(tmp_path, "[manager]\nport = 9001\n"))
    assert load_config().manager.port == 8091


def test_unknown_keys_fail_with_a_readable_message(tmp_path):
    path = write(tmp_path, "[manager]\nprot = 9001\n[nosuch]\na = 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    assert text.splitlines()[0] == f"invalid configuration in {path}:"
    assert "  manager.prot: Extra inputs are not permitted" in text
    assert "  nosuch: Extra inputs are not permitted" in text


def test_unknown_environment_keys_of_a_section_fail(monkeypatch):
    monkeypatch.setenv("WORKBAY_MANAGER__PROT", "9001")
    with pytest.raises(ConfigError, match=r"manager\.prot: Extra inputs are not permitted"):
        load_config()


def test_unknown_keys_name_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "[agent]\nresource_grup = \"gpu\"\n"))
    line = next(x for x in str(e.value).splitlines() if "resource_grup" in x)
    assert "agent.resource_grup: Extra inputs are not permitted (unknown key; known keys: " in line
    assert "resource_group" in line


def test_unknown_environment_keys_name_the_variable(monkeypatch):
    monkeypatch.setenv("WORKBAY_AGENT__RESOURCE_GRUP", "gpu")
    with pytest.raises(ConfigError, match=r"agent\.resource_grup: .*from the environment variable "
                                          r"WORKBAY_AGENT__RESOURCE_GRUP"):
        load_config()


def test_an_unknown_section_in_the_environment_fails(monkeypatch):
    # pydantic-settings alone ignores it: the typo would configure nothing without a word.
    monkeypatch.setenv("WORKBAY_MANGER__PORT", "9100")
    with pytest.raises(ConfigError) as e:
        load_config()
    text = str(e.value)
    assert text.splitlines()[0] == "invalid configuration in the environment:"
    assert "  WORKBAY_MANGER__PORT: no configuration section 'manger' (sections: " in text
    assert "manager" in text


def test_other_tools_variables_are_not_configuration(monkeypatch):
    monkeypatch.setenv("WORKBAY_ENDPOINT", "http://127.0.0.1:8091")  # the CLI's
    monkeypatch.setenv("WORKBAY_ADMIN_PASSWORD", "x")
    assert load_config().manager.port == 8091


def test_the_agent_resource_group_is_explicit(tmp_path):
    assert load_config().agent.resource_group == "default"  # the documented default (docs/agent-rpc.md)
    assert load_config(write(tmp_path, '[agent]\nresource_group = "gpu"\n')).agent.resource_group == "gpu"
    with pytest.raises(ConfigError, match=r"agent\.resource_group: String should have at least 1 character"):
        load_config(write(tmp_path, '[agent]\nresource_group = ""\n'))


@pytest.mark.parametrize("text, fragment", [
    ("[manager]\nport = 0\n", "manager.port: Input should be greater than or equal to 1"),
    ("[manager]\nport = \"http\"\n", "manager.port: Input should be a valid integer"),
    ("[db]\nurl = \"mysql://x\"\n", "db.url: Value error, must start with sqlite+aiosqlite:// or postgresql+asyncpg://"),
    ("[logging]\nlevel = \"LOUD\"\n", "logging.level: Input should be"),
])
def test_invalid_values_say_where_and_why(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert fragment in str(e.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[manager\nport = 1\n"))


def test_urls_handed_to_other_components_never_name_a_wildcard_address():
    """A listener bound to every interface is reached (on one machine) over loopback; a cluster
    names the real address in the URL settings, which win."""
    cfg = load_config(storage={"host": "0.0.0.0"}, appproxy={"host": "::"},
                      agent={"host": "0.0.0.0", "port": 6005})
    assert cfg.storage.manager_api_url == "http://127.0.0.1:6022"
    assert cfg.storage.client_api_url == "http://127.0.0.1:6021"
    assert cfg.appproxy.api_url == "http://127.0.0.1:10200" and cfg.appproxy.public_host == "127.0.0.1"
    assert cfg.agent.rpc_url == "http://127.0.0.1:6005"
    node = load_config(storage={"host": "192.0.2.2", "client_url": "https://files.example.org/"},
                       appproxy={"host": "192.0.2.2"}, agent={"host": "::1"})
    assert node.storage.manager_api_url == "http://192.0.2.2:6022"
    assert node.storage.client_api_url == "https://files.example.org"
    assert node.appproxy.api_url == "http://192.0.2.2:10200" and node.appproxy.public_host == "192.0.2.2"
    assert node.agent.rpc_url == "http://[::1]:6001"
    advertised = load_config(agent={"host": "0.0.0.0", "advertise_url": "http://10.0.0.21:6001/"})
    assert advertised.agent.rpc_url == "http://10.0.0.21:6001"


def test_urls_handed_out_bracket_ipv6_and_never_name_a_wildcard():
    from workbay.common.config import http_url
    assert http_url("2001:db8::7", 8094) == "http://[2001:db8::7]:8094"
    assert http_url("0.0.0.0", 8094) == "http://127.0.0.1:8094"
    assert http_url("node1.example", 80) == "http://node1.example:80"
