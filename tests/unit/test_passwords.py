"""Password rules ID-4 and hashing."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from workbay.manager.services import passwords


def oracle(pw: str) -> bool:
    """ID-4 from Unicode categories: ≥ 8 characters, a letter (L*), a decimal digit (Nd) and a
    special character (punctuation P* or symbol S*)."""
    cats = [unicodedata.category(c) for c in pw]
    return (len(pw) >= 8 and any(c[0] == "L" for c in cats) and "Nd" in cats
            and any(c[0] in "PS" for c in cats))


# Characters that matter, often enough that both outcomes are common.
interesting = st.sampled_from(list("aZ9!é٣€_- \t~ßΩ0漢字😀²½\u00a0"))
passwords_st = st.text(alphabet=st.one_of(interesting, st.characters()), max_size=14)


@settings(max_examples=600, deadline=None)
@given(passwords_st)
@example("Abcdef1!")
@example("abcdefg1")        # no special
@example("abcdefg!")        # no digit
@example("1234567!")        # no letter
@example("Ab1!")            # too short
@example("Ab1!Ab1")         # 7 characters
@example("пароль1€")        # Cyrillic letters, a symbol
@example("密码密码密码1!")
@example("abcdefg²!")       # a superscript two is not a decimal digit
@example("abcdefg٣!")       # an Arabic-Indic three is
def test_a_password_is_accepted_iff_it_meets_every_rule(pw):
    assert (passwords.password_problems(pw) == []) is oracle(pw)


@settings(max_examples=200, deadline=None)
@given(passwords_st)
def test_each_problem_names_one_broken_rule(pw):
    problems = passwords.password_problems(pw)
    cats = [unicodedata.category(c) for c in pw]
    assert (passwords.RULES["length"] in problems) is (len(pw) < 8)
    assert (passwords.RULES["letter"] in problems) is (not any(c[0] == "L" for c in cats))
    assert (passwords.RULES["digit"] in problems) is ("Nd" not in cats)
    assert (passwords.RULES["special"] in problems) is (not any(c[0] in "PS" for c in cats))


def test_describe_problems_lists_the_rules():
    msg = passwords.describe_problems(passwords.password_problems("abc"))
    assert msg == ("Password must contain at least 8 characters, at least one digit, "
                   "at least one special character.")


def test_hash_and_verify():
    hashed = passwords.hash_password("Abcdef1!")
    assert hashed.startswith("$2") and "Abcdef1!" not in hashed
    assert passwords.verify_password("Abcdef1!", hashed)
    assert not passwords.verify_password("Abcdef1?", hashed)
    assert not passwords.verify_password("Abcdef1!", "not-a-bcrypt-hash")
    assert not passwords.verify_password("Abcdef1!", passwords.DUMMY_HASH)


def test_long_and_odd_passwords_hash_without_errors():
    long_pw = "Ab1!" * 40                               # 160 bytes: bcrypt uses the first 72
    assert passwords.verify_password(long_pw, passwords.hash_password(long_pw))
    odd = "Ab1!\x00\ud800密码"                           # NUL and a lone surrogate from JSON
    hashed = passwords.hash_password(odd)
    assert passwords.verify_password(odd, hashed)
    assert not passwords.verify_password("Ab1!", hashed)


def test_generated_passwords_meet_the_rules():
    for _ in range(50):
        pw = passwords.generate_password()
        assert len(pw) == 16 and passwords.password_problems(pw) == []
