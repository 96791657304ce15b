"""Typed configs that the command line mirrors (TRL's pattern): every field of a config dataclass
becomes a `--field-name` flag with the field's type, default and help, so the two cannot drift."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

from aloe_bench.errors import UserInputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) for `X`, `X | None`, `Optional[X]`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, *, title: str | None = None, exclude: tuple[str, ...] = ()
) -> None:
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or f.metadata.get("cli") is False:
            continue
        kind, _ = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f.metadata.get("help", "")
        if kind is bool:
            group.add_argument(
                flag(f.name),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text if default is None else f"{help_text} (default: {'on' if default else 'off'})",
            )
            continue
        shown = "" if default is None else f" (default: {default})"
        group.add_argument(
            flag(f.name),
            type=kind,
            default=None,
            metavar=None if f.metadata.get("choices") else f.metadata.get("metavar", kind.__name__.upper()),
            choices=f.metadata.get("choices"),
            required=bool(f.metadata.get("required")),
            help=help_text + shown,
        )


def config_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The dataclass with every flag that was given; unset flags keep the field's default."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**values)
    except TypeError as exc:
        raise UserInputError(str(exc)) from None


def config_record(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
