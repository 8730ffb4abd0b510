

def test_only_the_newest_matches_are_ranked(number, alice, monkeypatch):
    if search_index.backend() == "like":
        pytest.skip("the plain fallback has no rank: newest first only")
    monkeypatch.setattr("conversations.search_selectors.WINDOW", 2)
    _say(number, "invoice invoice invoice, the best match but the oldest")
    newer = [_say(number, f"one invoice among many other words, number {i}").pk for i in range(2)]
    assert sorted(h.message.pk for h in message_search(user=alice, text="invoice")) == newer
