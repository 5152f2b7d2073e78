"""The loss check's duplicate and time-out rules, on hand-made database rows."""

from orbitdock.load import verify


def rows(*texts: tuple[str, str]) -> list[tuple]:
    """(id, seq, type, content, tool_input, turn) rows, one per (type, content)."""
    return [(f"m{i}", i, mtype, content, None, f"t{i}") for i, (mtype, content) in enumerate(texts)]


def test_replies_cut_inside_their_tag_are_not_duplicates():
    # three interrupted turns whose replies all stopped at the same character
    db = verify.DbMessages(rows={"s1": rows(*[("assistant", "Done [LOAD:s")] * 3)})
    v = verify.Verdict()
    verify.check_duplicates(v, db, [{"dup_ids": 0}])
    assert v.duplicated == 0


def test_a_whole_tagged_reply_stored_twice_is_a_duplicate():
    text = "Done [LOAD:s0001:t00002:text]. the quick"
    db = verify.DbMessages(rows={"s1": rows(("assistant", text), ("assistant", text))})
    v = verify.Verdict()
    verify.check_duplicates(v, db, [{"dup_ids": 0}], {"[LOAD:s0001:t00002:text]": ["final"]})
    assert v.duplicated == 1
    assert "duplicated in s1" in v.examples[0]


def test_passive_prompts_count_only_with_their_whole_tag():
    db = verify.DbMessages(rows={"s1": rows(("user", "[PASSIVE:p0001:t00002] keep going"),
                                            ("user", "[PASSIVE:p0001:t00002] keep going"),
                                            ("user", "[PASSIVE:p00"), ("user", "[PASSIVE:p00"))})
    v = verify.Verdict()
    verify.check_duplicates(v, db, [{"dup_ids": 0}])
    assert v.duplicated == 1


def test_timed_out_turns_name_what_the_model_served():
    outcomes = [("s1", "[LOAD:s0001:t00002:exec]", "exec", "timeout", 0.0, 1.0, "t"),
                ("s1", "[LOAD:s0001:t00003:text]", "text", "completed", 1.0, 2.0, "u")]
    notes = verify.explain_timeouts(outcomes, {"[LOAD:s0001:t00002:exec]": ["call"]})
    assert notes == ["[LOAD:s0001:t00002:exec] (s1) timed out; the model served ['call']"]
