"""Exports of an incident: a post-mortem to circulate (markdown, html) and machine timelines
(json, csv, timesketch). Each is a pure function of the journal, so the same journal gives the
same bytes; the chain's verification is part of every export. Each is written as the journal
is read (`recorded.read_incident`), so an export of any size takes the same memory."""
