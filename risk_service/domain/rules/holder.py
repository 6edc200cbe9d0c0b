"""Holds the active rule set and swaps in a changed file only when it loads cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

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


class RuleSetHolder:
    """The active rule set. Readers read `.current` once per request; reloads swap it whole.

    The first load raises RuleSetError (there is nothing to fall back on). After that, reloads
    never raise: a broken file is logged, kept in `.last_error`, and the previous set stays
    active. For health reports: `.last_error` (None when the active set is the file on disk)
    and `.current.runtime_error_count` (conditions that raised while evaluating).
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
            return self._keep_previous(before, exc)
        except Exception as exc:  # load_rule_set raises only RuleSetError; the reload loop must outlive a bug
            logger.exception("rule set %s: unexpected error while reloading", self.path)
            message = f"cannot load rule set: unexpected {type(exc).__name__}"
            return self._keep_previous(before, RuleSetError([RuleLoadError(str(self.path), 1, None, message)]))
        self._signature = _merge(before, rule_set.sources)
        self.current = rule_set
        self.last_error = None
        logger.info("rule set %s loaded, version %s, %d rules", self.path, rule_set.version, len(rule_set.rules))
        return True

    def _keep_previous(self, before: _Signature, error: RuleSetError) -> bool:
        self.last_error = error
        # Watch the files the broken set named as well, so a fix in any of them is noticed.
        self._signature = _merge(before, error.sources)
        logger.error(
            "rule set %s not reloaded, %d error(s); keeping version %s",
            self.path,
            len(error.errors),
            self.current.version,
        )
        for line in error.errors:
            logger.error("rule set error: %s", line)
        return False
