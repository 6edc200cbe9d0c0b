"""Holds the active rule set and swaps in a changed file only when it loads cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from risk_service.domain.rules.engine import RuleSet
from risk_service.domain.rules.errors import RuleSetError
from risk_service.domain.rules.loader import load_rule_set

logger = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int] | tuple[str], ...]


def _signature(paths: Sequence[Path]) -> _Signature:
    out: list[tuple[str, int, int] | tuple[str]] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
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


class RuleSetHolder:
    """The active rule set. Readers read `.current` once per request; reloads swap it whole.

    The first load raises RuleSetError (there is nothing to fall back on); later broken files
    are logged, kept in `.last_error`, and the previous set stays active.
    """

    def __init__(self, path: Path, feature_names: Sequence[str]) -> None:
        self.path = Path(path)
        self.feature_names = tuple(feature_names)
        self.last_error: RuleSetError | None = None
        self._lock = threading.Lock()
        before = _signature([self.path])
        self.current: RuleSet = load_rule_set(self.path, self.feature_names)
        self._signature = _merge(before, self.current.sources)

    def reload_if_changed(self) -> bool:
        """Reloads when the rule file or a list file changed; True if a new set became active."""
        with self._lock:
            if _signature([Path(s[0]) for s in self._signature]) == self._signature:
                return False
            return self._reload()

    def reload(self) -> bool:
        """Reloads unconditionally; True if a new set became active."""
        with self._lock:
            return self._reload()

    def _reload(self) -> bool:
        # Stat before reading, so an edit made while loading is seen by the next check.
        before = _signature([Path(s[0]) for s in self._signature])
        try:
            rule_set = load_rule_set(self.path, self.feature_names)
        except RuleSetError as exc:
            self.last_error = exc
            # Watch the files the broken set named as well, so a fix in any of them is noticed.
            self._signature = _merge(before, exc.sources)
            logger.error(
                "rule set %s not reloaded, %d error(s); keeping version %s",
                self.path,
                len(exc.errors),
                self.current.version,
            )
            for error in exc.errors:
                logger.error("rule set error: %s", error)
            return False
        self._signature = _merge(before, rule_set.sources)
        self.current = rule_set
        self.last_error = None
        logger.info("rule set %s loaded, version %s, %d rules", self.path, rule_set.version, len(rule_set.rules))
        return True
