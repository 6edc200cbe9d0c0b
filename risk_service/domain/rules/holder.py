"""Holds file-backed values (rule set, controlled goods table); swaps in a changed file only if it loads cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from risk_service.domain.rules.context import DECLARATION_SUBJECT, RuleSubject
from risk_service.domain.rules.engine import RuleSet
from risk_service.domain.rules.errors import RuleLoadError, RuleSetError
from risk_service.domain.rules.loader import load_rule_set

logger = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int] | tuple[str], ...]


def _signature(paths: Sequence[Path]) -> _Signature:
    out: list[tuple[str, int, int] | tuple[str]] = []
    for path in paths:
        try:
            stat = path.stat()
        except (OSError, ValueError):  # ValueError: a list file path with a NUL byte
            out.append((str(path),))
            continue
        out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def _merge(before: _Signature, sources: Sequence[Path]) -> _Signature:
    """Signatures of `sources`, keeping the pre-load stat of files already watched."""
    known = {entry[0]: entry for entry in before}
    fresh = {entry[0]: entry for entry in _signature([p for p in sources if str(p) not in known])}
    paths = dict.fromkeys([entry[0] for entry in before] + [str(p) for p in sources])
    return tuple(known.get(p) or fresh[p] for p in paths)


class Loaded(Protocol):
    """What a file-backed value tells its holder: its version, and every file it was read from."""

    @property
    def version(self) -> str: ...

    @property
    def sources(self) -> tuple[Path, ...]: ...


class LoadFailure(Protocol):
    """What a load error tells its holder: every problem (one per log line), and the files it read."""

    @property
    def errors(self) -> Sequence[object]: ...

    @property
    def sources(self) -> tuple[Path, ...]: ...


_T = TypeVar("_T", bound=Loaded)
_E = TypeVar("_E", bound=LoadFailure)


class FileHolder(Generic[_T, _E]):
    """A value loaded from a file (and the files it names), reloaded when any of them changes.

    Readers read `.current` once per request; reloads swap it whole. The first load raises the
    load error (there is nothing to fall back on). After that, reloads never raise: a broken file
    is logged, kept in `.last_error`, and the previous value stays active. Subclasses say how to
    load (`_load`, raising `error_type`), how to describe a value for the log (`_summary`), and
    what error stands for a loader bug (`_unexpected`).
    """

    what = "file"  # how log lines name the value
    error_type: type[_E]  # what `_load` raises for a file it cannot use

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.last_error: _E | None = None
        self._lock = threading.Lock()
        before = _signature([self.path])
        self.current: _T = self._load()
        self._signature = _merge(before, self.current.sources)

    def _load(self) -> _T:
        raise NotImplementedError

    def _summary(self, value: _T) -> str:
        return f"version {value.version}"

    def _unexpected(self, message: str) -> _E:
        raise NotImplementedError

    def reload_if_changed(self) -> bool:
        """Reloads when the file or a file it names changed; True if a new value became active."""
        with self._lock:
            if _signature([Path(s[0]) for s in self._signature]) == self._signature:
                return False
            return self._reload()

    def reload(self) -> bool:
        """Reloads unconditionally; True if a new value became active."""
        with self._lock:
            return self._reload()

    def _reload(self) -> bool:
        # Stat before reading, so an edit made while loading is seen by the next check.
        before = _signature([Path(s[0]) for s in self._signature])
        try:
            value = self._load()
        except Exception as exc:  # the loader raises only error_type; the reload loop must outlive a bug
            if isinstance(exc, self.error_type):
                return self._keep_previous(before, exc)
            logger.exception("%s %s: unexpected error while reloading", self.what, self.path)
            return self._keep_previous(
                before, self._unexpected(f"cannot load {self.what}: unexpected {type(exc).__name__}")
            )
        self._signature = _merge(before, value.sources)
        self.current = value
        self.last_error = None
        logger.info("%s %s loaded, %s", self.what, self.path, self._summary(value))
        return True

    def _keep_previous(self, before: _Signature, error: _E) -> bool:
        self.last_error = error
        # Watch the files the broken load named as well, so a fix in any of them is noticed.
        self._signature = _merge(before, error.sources)
        logger.error(
            "%s %s not reloaded, %d error(s); keeping version %s",
            self.what,
            self.path,
            len(error.errors),
            self.current.version,
        )
        for line in error.errors:
            logger.error("%s error: %s", self.what, line)
        return False


class RuleSetHolder(FileHolder[RuleSet, RuleSetError]):
    """The active rule set. Readers read `.current` once per request; reloads swap it whole.

    The first load raises RuleSetError (there is nothing to fall back on). After that, reloads
    never raise: a broken file is logged, kept in `.last_error`, and the previous set stays
    active. For health reports: `.last_error` (None when the active set is the file on disk)
    and `.current.runtime_error_count` (conditions that raised while evaluating).
    """

    what = "rule set"
    error_type = RuleSetError

    def __init__(self, path: Path, feature_names: Sequence[str], *, subject: RuleSubject = DECLARATION_SUBJECT) -> None:
        self.feature_names = tuple(feature_names)
        self.subject = subject  # what the held sets screen; every reload uses the same
        super().__init__(path)

    def _load(self) -> RuleSet:
        return load_rule_set(self.path, self.feature_names, self.subject)

    def _summary(self, value: RuleSet) -> str:
        return f"version {value.version}, {len(value.rules)} rules"

    def _unexpected(self, message: str) -> RuleSetError:
        return RuleSetError([RuleLoadError(str(self.path), 1, None, message)])
