"""Signed events: each event signed by the responder who wrote it, with their SSH key through
ssh-agent (SSHSIG, as `ssh-keygen -Y sign` and git sign), and checked by `verify` against
the keys the contacts file lists for each person.

A name typed with `--as` is only a name; a signature binds the event to a key, and the
contacts file binds the key to a person. So `verify` names who signed each event, an event
written as one person with another's key fails, and so does an approval signed with the key
of the person who requested the action: the two-person rule needs two people's keys.

The contacts file says whether unsigned events are allowed (`signed_events: required`);
where they are, `verify` counts them, and they pass.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from irtool.engine import kinds
from irtool.engine.dumped import dumped_contacts
from irtool.journal import Event, sshsig
from irtool.journal.store import Unsigned
from irtool.model.names import same_responder
from irtool.model.sshkeys import people_keys, signatures_required


class AgentSigner:
    """Signs each event as its actor, with the first of the actor's keys (by the contacts
    file) that the ssh-agent holds; the journal calls it with (actor, hash) as it writes.

    Where signatures are required, an event it cannot sign is refused, and not written; where
    they are not, it is written unsigned, and `verify` counts it."""

    def __init__(self, contacts: dict[str, Any] | None) -> None:
        self._keys = people_keys(contacts)
        self._required = signatures_required(contacts)
        self._agent: list[sshsig.PublicKey] | None = None

    @property
    def required(self) -> bool:
        """Every event must be signed: one that cannot be is refused."""
        return self._required

    def __call__(self, actor: str, digest: str) -> str | None:
        try:
            key = self._key(actor)
            return sshsig.sign(digest.encode("ascii"), key)
        except (sshsig.SigningError, _NoKey) as failed:
            if self._required:  # written unsigned, where that is allowed; refused where not
                raise Unsigned(f"{failed}, and this incident's events must be signed") from None
            return None

    def unable(self, actor: str) -> str | None:
        """Why `actor` cannot sign here (no key listed, none in the agent, no agent), or None."""
        try:
            self._key(actor)
        except (sshsig.SigningError, _NoKey) as failed:
            return str(failed)
        return None

    def _key(self, actor: str) -> sshsig.PublicKey:
        person = next((p for p in self._keys if same_responder(p, actor)), None)
        lines = self._keys.get(person or "", [])
        if not lines:
            raise _NoKey(f"{actor} has no key in the contacts file")
        mine = {sshsig.PublicKey.parse(line).blob for line in lines}
        key = None
        for fresh in (False, True):  # asked again: a key may have been added since (ssh-add)
            if fresh or self._agent is None:
                try:
                    self._agent = sshsig.agent_keys()
                except sshsig.SigningError as failed:
                    raise _NoKey(f"cannot sign as {actor}: {failed}") from None
            key = next((k for k in self._agent if k.blob in mine), None)
            if key is not None:
                break
        if key is None:
            raise _NoKey(
                f"none of {actor}'s keys in the contacts file is in the ssh-agent (ssh-add it)"
            )
        return key


class _NoKey(Exception):
    """The actor has no key this signer can sign with (the reason, in a responder's words)."""


class SignatureCheck:
    """What `verify` says of the signatures, event by event (`see`), in the journal's order:
    who signed what, what is unsigned, and every event signed wrongly."""

    def __init__(self) -> None:
        self.required = False
        self.signed: Counter[str] = Counter()  # person -> events they signed
        self.unsigned = 0
        self.problems: list[str] = []
        self._owners: dict[bytes, str] = {}  # key blob -> person
        self._requested_by: dict[str, str] = {}  # action step -> the person who signed it

    def see(self, event: Event) -> None:
        if event.kind == kinds.INCIDENT_OPENED:
            contacts = dumped_contacts(event.data)
            self.required = signatures_required(contacts)
            for person, lines in people_keys(contacts).items():
                for line in lines:
                    try:
                        self._owners[sshsig.PublicKey.parse(line).blob] = person
                    except (ValueError, TypeError):
                        self.problems.append(f"event {event.seq}: {person} has a bad key: {line}")
        signer = self._signer(event)
        if signer is not None:
            self.signed[signer] += 1
        step = event.step or ""
        if event.kind == kinds.ACTION_REQUESTED:
            self._requested_by.pop(step, None)
            if signer is not None:
                self._requested_by[step] = signer
        elif event.kind == kinds.ACTION_APPROVED and self._owners:
            # Where the team signs its events, an approval is two people's signatures.
            requester = self._requested_by.get(step)
            if signer is None or requester is None:
                self.problems.append(
                    f"event {event.seq}: the approval of '{step}' and the request it approves "
                    "are not both signed: the two-person rule needs two people's keys"
                )
            elif requester == signer:
                self.problems.append(
                    f"event {event.seq}: '{step}' was approved with the key of {signer}, who "
                    "requested it: the two-person rule needs two people's keys"
                )

    def _signer(self, event: Event) -> str | None:
        """The person whose key signed `event`, once it is seen to be theirs; else None."""
        if event.signature is None:
            self.unsigned += 1
            if self.required:
                self.problems.append(
                    f"event {event.seq} ({event.kind} by {event.actor}) is unsigned, and this "
                    "incident's events must be signed"
                )
            return None
        try:
            key = sshsig.verify(event.hash.encode("ascii"), event.signature)
        except sshsig.BadSignature as bad:
            self.problems.append(f"event {event.seq}: its signature does not verify: {bad}")
            return None
        owner = self._owners.get(key.blob)
        if owner is None:
            self.problems.append(
                f"event {event.seq} is signed with a key no one in the contacts file holds "
                f"({key.fingerprint()})"
            )
            return None
        if not same_responder(owner, event.actor):
            self.problems.append(
                f"event {event.seq} was written as {event.actor} but signed with {owner}'s key"
            )
            return None
        return owner

    def summary(self) -> str:
        who = ", ".join(f"{person} {count}" for person, count in sorted(self.signed.items()))
        signed = sum(self.signed.values())
        return f"signatures: {signed} signed ({who or 'no one'}), {self.unsigned} unsigned" + (
            "" if self.required else " (allowed)"
        )
