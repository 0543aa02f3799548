"""The sets of outcomes the rules count by (pure, imports nothing): the retry policy
(dialer/outcomes.py), the abandonment rate (dialer/store/abandonment.py) and the reports read
them from here."""

#: Outcomes after which the contact is done: it talked to an agent (`answered_late`: a predictive
#: call bridged more than 2 s after the answer — counted as abandoned for the rate, final for the
#: contact).
FINAL_OUTCOMES = frozenset({"answered", "answered_late"})

#: Outcomes that count as abandoned, and as live answers, for the FCC/Ofcom rate. The API cannot
#: tell a person from an answering machine, so every answer counts as live.
ABANDONED = ("abandoned", "answered_late")
LIVE = ("answered", "answered_late", "abandoned")
