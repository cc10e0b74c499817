"""The agent's isolation chain must be FORWARD's first rule, not merely present in it."""

from workbay.agent.isolation import CHAIN_1, jump_is_first, ruleset


def test_the_jump_counts_only_when_it_is_the_first_forward_rule():
    ours = f"-A FORWARD -j {CHAIN_1}"
    netavark = '-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD'
    assert jump_is_first(f"-P FORWARD ACCEPT\n{ours}\n{netavark}\n")
    # netavark re-inserted its ACCEPTing jump above ours: sessions would reach each other.
    assert not jump_is_first(f"-P FORWARD ACCEPT\n{netavark}\n{ours}\n")
    assert not jump_is_first("-P FORWARD ACCEPT\n")


def test_ruleset_drops_only_between_different_session_subnets():
    text = ruleset(["10.89.4.0/24", "10.89.5.0/24"])
    assert f"-A {CHAIN_1} -s 10.89.4.0/24 ! -d 10.89.4.0/24 -j WORKBAY-ISOLATION-2" in text
    assert "-A WORKBAY-ISOLATION-2 -d 10.89.5.0/24 -j DROP" in text
