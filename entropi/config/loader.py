"""Loading a config: strict YAML, ``${VAR}`` references, one error line naming key and line."""

from __future__ import annotations

import difflib
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from entropi.config.budget import check_budget
from entropi.config.schema import Config
from entropi.core.errors import ConfigError
from entropi.core.files import PathKindError, open_regular, stat_kind

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = {("model", "hf_token"), ("secondary_model", "api_key")}


MAX_CONFIG_BYTES = 256 * 1024  # a real config is a few KB
MAX_YAML_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses what only a mistake or an attack produces: aliases (an alias
    bomb expands a few lines into gigabytes), deep nesting (recursion) and duplicate keys
    (silently last-wins otherwise)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not supported; write the value out",
                problem_mark=self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_YAML_DEPTH} levels",
                                           problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue  # unhashable: the base class reports it
            if first != key_node.start_mark.line + 1:
                raise yaml.MarkedYAMLError(
                    problem=f"key {key!r} appears twice (first at line {first}); keep one",
                    problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep)


def _load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, from one parse."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        return node, (None if node is None else loader.construct_document(node))
    finally:
        loader.dispose()


class _Located:
    """Maps key paths of the YAML document to 1-based line numbers."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                self._walk(value, sub)
                self.lines[sub] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def line(self, path: tuple[str | int, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expand_env(data: Any, path: tuple[str | int, ...], env: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: _expand_env(v, (*path, str(k)), env) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_env(v, (*path, i), env) for i, v in enumerate(data)]
    if not isinstance(data, str):
        if path[-2:] in _SECRET_KEYS and data is not None:
            raise ConfigError(f"{_dotted(path)}: secrets must be given as ${{VAR}} references")
        return data
    if tuple(path[-2:]) in _SECRET_KEYS and not _ENV_REF.fullmatch(data.strip()):
        raise ConfigError(
            f"{_dotted(path)}: secrets must come from the environment; write it as a "
            f"${{VAR}} reference (e.g. ${{OPENROUTER_API_KEY}}), not the key itself"
        )

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{_dotted(path)}: environment variable {name} is not set")

    return _ENV_REF.sub(sub, data)


def _describe(err: dict[str, Any], located: _Located, fields: list[str]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        msg = f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
    elif kind == "literal_error":
        allowed = ", ".join(str(x) for x in err["ctx"]["expected"].replace("'", "").split(" or "))
        allowed = allowed.replace(", ,", ",")
        msg = f"{value!r} is not one of {allowed}"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        msg = f"{value!r} is out of range: {err['msg'].replace('Input should be', 'must be')}"
    elif kind == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
    else:
        msg = f"{value!r} is not valid: {err['msg'].replace('Input should be', 'expected')}"
    where = _dotted(tuple(p for p in loc if not (isinstance(p, str) and "[" in p)))
    line = located.line(loc)
    return f"{where}: {msg}" + (f" (line {line})" if line else "")


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            break
        model = ann
    return list(model.model_fields)


def parse_config(
    text: str, source: str = "<config>", base_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Parse YAML text into a :class:`Config` or raise one :class:`ConfigError` line."""
    env = dict(os.environ) if env is None else env
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: {len(text)} characters is far too big for a config "
                          f"(limit {MAX_CONFIG_BYTES}); is this the right file?")
    try:
        node, data = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: unreadable YAML{where}: {problem}") from None
    except RecursionError:  # belt and braces: _StrictLoader caps the depth first
        raise ConfigError(f"{source}: unreadable YAML: nested too deeply") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty; start from config.yaml in the project")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, "
                          f"not {type(data).__name__}")
    located = _Located(node)
    try:
        data = _expand_env(data, (), env)
    except ConfigError as exc:
        key = exc.message.split(":", 1)[0]
        line = located.line(tuple(key.split(".")))
        raise ConfigError(exc.message + (f" (line {line})" if line else "")) from None
    try:
        cfg = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(_describe(err, located, _fields_at(tuple(err["loc"])))) from None
    return cfg.model_copy(update={"source_path": Path(source) if base_dir else None})


def load_config(path: str | Path, env: dict[str, str] | None = None,
                check: bool = True) -> Config:
    """Read, expand, validate and budget-check a config file."""
    path = Path(path)
    try:
        st = stat_kind(path)
    except PathKindError as exc:  # a FIFO would block the open forever: look first
        raise ConfigError(f"{path}: {exc}; {exc.fix('the config file')}") from None
    try:
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        with os.fdopen(open_regular(path), "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # never read a huge file whole
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES // 1024} KiB, far too big for "
                              "a config; is this the right file?")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    cfg = parse_config(text, source=str(path), base_dir=path.resolve().parent, env=env)
    if check:
        check_budget(cfg)
    return cfg


def masked_dump(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data with every secret masked."""
    data = cfg.model_dump(mode="json")
    for section, key in _SECRET_KEYS:
        if data.get(section, {}).get(key) is not None:
            data[section][key] = "********"
    return data
