"""Loads a YAML rule set, checking everything and reporting every error with file, line and rule id."""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import yaml

from risk_service.domain.assessment import Channel
from risk_service.domain.rules.conditions import compile_condition
from risk_service.domain.rules.context import DECLARATION_SUBJECT, RuleSubject
from risk_service.domain.rules.engine import Rule, RuleSet
from risk_service.domain.rules.errors import RuleLoadError, RuleSetError
from risk_service.domain.rules.messages import parse_template

_TOP_KEYS: Final = frozenset({"version", "lists", "list_files", "rules"})
_RULE_KEYS: Final = frozenset(
    {"id", "description", "condition", "weight", "min_channel", "valid_from", "valid_to", "enabled"}
)
_REQUIRED_RULE_KEYS: Final = ("description", "condition", "weight")
_RULE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_LIST_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_CHANNELS: Final = {c.name: c for c in (Channel.GREEN, Channel.BLUE, Channel.YELLOW, Channel.RED)}

#: Largest rule file or list file read, in bytes: a rule set is text an analyst writes, and a
#: bound keeps a wrong path (a log, a dump, /dev/zero) from stalling or exhausting the service.
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
#: Deepest YAML nesting accepted. A rule set needs about four levels; the bound is checked while
#: composing, so a file of thousands of '[' is a clear error rather than a RecursionError.
MAX_YAML_DEPTH: Final = 32

logger = logging.getLogger(__name__)


def load_rule_set(path: Path, feature_names: Sequence[str], subject: RuleSubject = DECLARATION_SUBJECT) -> RuleSet:
    """Loads and checks a rule set; raises RuleSetError listing every problem found.

    Conditions and messages may use the names of `subject` (by default, goods declarations)
    plus `features.<name>` for each feature name. Any failure to read, parse or compile the
    files becomes a RuleSetError, never another exception, so a hot reload of a broken file
    cannot take down its caller.
    """
    loader = _Loader(Path(path), feature_names, subject)
    try:
        return loader.load()
    except RuleSetError:
        raise
    except Exception as exc:  # a loader bug or an input we did not foresee: still a load error
        logger.exception("unexpected error loading rule set %s", loader.path)
        file, line = loader.position
        loader.error(line, None, f"cannot load rule set: unexpected {type(exc).__name__}", file)
        raise loader.fail() from exc


class YamlProblem(Exception):
    """Why a YAML text could not be composed, at a 1-based line (0: the whole text)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def compose_yaml(text: str) -> yaml.Node | None:
    """The text's one YAML document as a node tree (None when empty); any failure is a YamlProblem.

    Composing keeps every node's line, so callers can report errors where they are; the depth
    bound turns a deeply nested text into a clear error instead of a RecursionError.
    """
    loader: _DepthLimitedLoader | None = None
    try:
        loader = _DepthLimitedLoader(text)  # checks the characters first
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(
            int(mark.line) + 1 if mark is not None else 0, f"invalid YAML: {exc.problem or exc.context}"
        ) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control code
        raise YamlProblem(line_at(text, exc.position), f"invalid YAML: {exc.reason} (0x{exc.character:x})") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(0, f"invalid YAML: {exc}") from None
    except RecursionError:  # nesting is bounded by the loader; this guards a stack already deep
        raise YamlProblem(
            int(loader.line) + 1 if loader is not None else 1, "invalid YAML: nested too deeply"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()  # type: ignore[no-untyped-call]


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def line_at(text: str | bytes, offset: int) -> int:
    """1-based line of a character (or byte) offset."""
    offset = max(offset, 0)
    if isinstance(text, bytes):
        return text.count(b"\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1


def readable_size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:g} MB" if n_bytes >= 2**20 else f"{n_bytes} bytes"


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_YAML_DEPTH (it recurses per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader:
    def __init__(self, path: Path, feature_names: Sequence[str], subject: RuleSubject) -> None:
        self.path = path
        self.subject = subject
        self.schema = subject.context_schema(feature_names)
        self.errors: list[RuleLoadError] = []
        self.sources: list[Path] = [path]
        self.constructor = yaml.SafeLoader("")
        # Where loading is, for a failure that carries no position of its own.
        self.position: tuple[Path, int] = (path, 1)

    def error(self, line: int, rule_id: str | None, message: str, file: Path | None = None) -> None:
        self.errors.append(RuleLoadError(str(file or self.path), line, rule_id, message))

    def fail(self) -> RuleSetError:
        return RuleSetError(self.errors, self.sources)

    # --- YAML plumbing ---------------------------------------------------------------------------

    def read(self, path: Path, what: str) -> str | None:
        """The text of a file, or None after recording why it cannot be used."""
        self.position = (path, 1)
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.error(0, None, f"cannot read {what}: not a regular file", path)
                return None
            with path.open("rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
        except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
            self.error(0, None, f"cannot read {what}: {type(exc).__name__}: {exc}", path)
            return None
        if len(data) > MAX_FILE_BYTES:
            self.error(0, None, f"{what} is larger than the {readable_size(MAX_FILE_BYTES)} limit", path)
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = line_at(data, exc.start)
            self.error(line, None, f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})", path)
            return None

    def compose(self, path: Path) -> yaml.Node | None:
        text = self.read(path, "file")
        if text is None:
            return None
        try:
            node = compose_yaml(text)
        except YamlProblem as problem:
            self.error(problem.line, None, problem.message, path)
            return None
        if node is None:
            self.error(0, None, "file is empty", path)
        return node

    def value(self, node: yaml.Node, rule_id: str | None, file: Path | None = None) -> tuple[bool, object]:
        try:
            return True, self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # the constructor raises plain ValueError for e.g. 2026-02-30
            self.error(_line(node), rule_id, f"invalid value: {exc}", file)
            return False, None

    def mapping(
        self, node: yaml.Node, rule_id: str | None, what: str, file: Path | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(_line(node), rule_id, f"{what} must be a mapping", file)
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                self.error(_line(key_node), rule_id, f"keys of {what} must be strings", file)
                continue
            key = str(key_node.value)
            if key in out:
                self.error(_line(key_node), rule_id, f"duplicate key '{key}' in {what}", file)
                continue
            out[key] = (key_node, value_node)
        return out

    # --- the rule set --------------------------------------------------------------------------

    def load(self) -> RuleSet:
        root = self.compose(self.path)
        if root is None:
            raise self.fail()
        top = self.mapping(root, None, "the rule set")
        if top is None:
            raise self.fail()
        for key, (key_node, _) in top.items():
            if key not in _TOP_KEYS:
                self.error(
                    _line(key_node), None, f"unknown key '{key}' (expected one of {', '.join(sorted(_TOP_KEYS))})"
                )
        version = self.version(top)
        lists = self.lists(top)
        rules = self.rules(top, lists)
        if self.errors:
            raise self.fail()
        return RuleSet(version, rules, lists, path=self.path, sources=self.sources, subject=self.subject)

    def version(self, top: dict[str, tuple[yaml.Node, yaml.Node]]) -> str:
        if "version" not in top:
            self.error(1, None, "missing 'version'")
            return ""
        node = top["version"][1]
        ok, value = self.value(node, None)
        if ok and (not isinstance(value, str) or not value.strip()):
            self.error(_line(node), None, 'version must be a non-empty quoted string, e.g. "2026.11.1"')
            return ""
        return str(value)

    def lists(self, top: dict[str, tuple[yaml.Node, yaml.Node]]) -> dict[str, list[object]]:
        lists: dict[str, list[object]] = {}
        if "lists" in top:
            entries = self.mapping(top["lists"][1], None, "'lists'") or {}
            for name, (key_node, value_node) in entries.items():
                if self.list_name_ok(name, key_node, lists):
                    lists[name] = self.list_values(value_node, name, self.path)
        if "list_files" in top:
            entries = self.mapping(top["list_files"][1], None, "'list_files'") or {}
            for name, (key_node, value_node) in entries.items():
                self.position = (self.path, _line(key_node))
                if not self.list_name_ok(name, key_node, lists):
                    continue
                ok, relative = self.value(value_node, None)
                if ok and (not isinstance(relative, str) or not relative.strip() or "\0" in relative):
                    self.error(_line(value_node), None, f"list file of '{name}' must be a path string")
                elif ok:
                    lists[name] = self.list_file(name, self.path.parent / str(relative))
        return lists

    def list_name_ok(self, name: str, key_node: yaml.Node, lists: dict[str, list[object]]) -> bool:
        if not _LIST_NAME.fullmatch(name):
            self.error(_line(key_node), None, f"list name '{name}' must be a letter then letters, digits or _")
            return False
        if name in lists:
            self.error(_line(key_node), None, f"list '{name}' is defined twice")
            return False
        return True

    def list_values(self, node: yaml.Node, name: str, file: Path) -> list[object]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(_line(node), None, f"list '{name}' must be a sequence", file)
            return []
        values: list[object] = []
        for element in node.value:
            ok, value = self.value(element, None, file)
            if not ok:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.error(_line(element), None, f"list '{name}': entries must be strings or numbers", file)
                continue
            values.append(value)
        return values

    def list_file(self, name: str, path: Path) -> list[object]:
        """A list file: a YAML sequence (.yaml/.yml) or plain text, one entry a line, # comments."""
        self.sources.append(path)
        if path.suffix in (".yaml", ".yml"):
            node = self.compose(path)
            return self.list_values(node, name, path) if node is not None else []
        text = self.read(path, f"list '{name}'")
        if text is None:
            return []
        entries = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return [entry for entry in entries if entry]

    def rules(self, top: dict[str, tuple[yaml.Node, yaml.Node]], lists: dict[str, list[object]]) -> list[Rule]:
        if "rules" not in top:
            self.error(1, None, "missing 'rules'")
            return []
        node = top["rules"][1]
        if not isinstance(node, yaml.SequenceNode):
            self.error(_line(node), None, "'rules' must be a sequence of rules")
            return []
        seen: dict[str, int] = {}
        rules: list[Rule] = []
        for rule_node in node.value:
            rule = self.rule(rule_node, lists, seen)
            if rule is not None:
                rules.append(rule)
        return rules

    def rule(self, node: yaml.Node, lists: dict[str, list[object]], seen: dict[str, int]) -> Rule | None:
        self.position = (self.path, _line(node))
        fields = self.mapping(node, None, "a rule")
        if fields is None:
            return None
        line = _line(node)
        rule_id = self.rule_id(fields, line, seen)
        for key, (key_node, _) in fields.items():
            if key not in _RULE_KEYS:
                self.error(
                    _line(key_node), rule_id, f"unknown key '{key}' (expected one of {', '.join(sorted(_RULE_KEYS))})"
                )
        for key in _REQUIRED_RULE_KEYS:
            if key not in fields:
                self.error(line, rule_id, f"missing '{key}'")
        errors_before = len(self.errors)

        condition = None
        if "condition" in fields:
            text_node = fields["condition"][1]
            text = self.string(text_node, rule_id, "condition")
            if text is not None:
                condition, messages = compile_condition(text, self.schema, lists)
                for message in messages:
                    self.error(_line(text_node), rule_id, message)

        template = None
        description = ""
        if "description" in fields:
            text_node = fields["description"][1]
            description = self.string(text_node, rule_id, "description") or ""
            if description:
                template, messages = parse_template(description, self.schema)
                for message in messages:
                    self.error(_line(text_node), rule_id, message)
            if template is not None and condition is not None:
                uses_hits = any(n.startswith("hits.") for n in condition.names)
                for name in template.names:
                    if name.startswith("hits.") and not uses_hits:
                        self.error(
                            _line(text_node), rule_id, f"placeholder '{{{name}}}' needs a condition that uses hits.*"
                        )

        weight = self.weight(fields, rule_id)
        min_channel = self.min_channel(fields, rule_id)
        valid_from = self.date(fields, "valid_from", rule_id)
        valid_to = self.date(fields, "valid_to", rule_id)
        if valid_from is not None and valid_to is not None and valid_to <= valid_from:
            self.error(
                _line(fields["valid_to"][1]), rule_id, f"valid_to {valid_to} must be after valid_from {valid_from}"
            )
        enabled = True
        if "enabled" in fields:
            value_node = fields["enabled"][1]
            ok, value = self.value(value_node, rule_id)
            if ok and not isinstance(value, bool):
                self.error(_line(value_node), rule_id, "enabled must be true or false")
            enabled = value is not False

        if len(self.errors) > errors_before or rule_id is None or condition is None or template is None:
            return None
        return Rule(
            id=rule_id,
            description=description,
            condition=condition,
            message=template,
            weight=weight,
            min_channel=min_channel,
            valid_from=valid_from,
            valid_to=valid_to,
            enabled=enabled,
            line=line,
            subject=self.subject,
        )

    def rule_id(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], line: int, seen: dict[str, int]) -> str | None:
        if "id" not in fields:
            self.error(line, None, "rule without 'id'")
            return None
        node = fields["id"][1]
        ok, value = self.value(node, None)
        if not ok:
            return None
        if not isinstance(value, str) or not _RULE_ID.fullmatch(value):
            hint = (
                " (quote it: YAML reads words like ON, OFF, YES and NO as true/false)"
                if isinstance(value, bool)
                else ""
            )
            self.error(_line(node), None, f"rule id {value!r} must be 1-64 letters, digits, '.', '_' or '-'{hint}")
            return None
        if value in seen:
            self.error(_line(node), value, f"duplicate rule id (first defined at line {seen[value]})")
            return value
        seen[value] = _line(node)
        return value

    def string(self, node: yaml.Node, rule_id: str | None, key: str) -> str | None:
        ok, value = self.value(node, rule_id)
        if not ok:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(_line(node), rule_id, f"{key} must be a non-empty string")
            return None
        return value

    def weight(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], rule_id: str | None) -> float:
        if "weight" not in fields:
            return 0.0
        node = fields["weight"][1]
        ok, value = self.value(node, rule_id)
        if not ok:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(_line(node), rule_id, f"weight must be a number, got {value!r}")
            return 0.0
        if not -1.0 <= value <= 1.0:
            self.error(_line(node), rule_id, f"weight {value} is outside [-1, 1]")
            return 0.0
        return float(value)

    def min_channel(self, fields: dict[str, tuple[yaml.Node, yaml.Node]], rule_id: str | None) -> Channel | None:
        if "min_channel" not in fields:
            return None
        node = fields["min_channel"][1]
        ok, value = self.value(node, rule_id)
        if not ok or value is None:
            return None
        channel = _CHANNELS.get(value) if isinstance(value, str) else None
        if channel is None:
            self.error(_line(node), rule_id, f"unknown channel {value!r} (expected one of {', '.join(_CHANNELS)})")
        return channel

    def date(
        self, fields: dict[str, tuple[yaml.Node, yaml.Node]], key: str, rule_id: str | None
    ) -> datetime.date | None:
        if key not in fields:
            return None
        node = fields[key][1]
        ok, value = self.value(node, rule_id)
        if not ok or value is None:
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = datetime.date.fromisoformat(value)
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            self.error(_line(node), rule_id, f"{key} must be a date like 2026-01-01, got {value!r}")
            return None
        return value
