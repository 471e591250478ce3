"""The instrument registry: ranges, direction, construct, items, subscales and norms, each with its source.

The shipped registry is ``data/instruments.toml``; users add instruments in files of the same shape named in
``$ALLIANCE_INSTRUMENTS`` — no code changes. Codes are matched case-insensitively (``phq-9`` → ``PHQ-9``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from alliance import config

POPULATIONS = ("adult", "adolescent", "child")
CONSTRUCTS = ("outcome", "alliance")


class RegistryError(ValueError):
    """A registry file is malformed; the message names the file, the instrument and the field."""


@dataclass(frozen=True)
class Norm:
    """Cut-off and reliable-change norms of one instrument for one population and norm set."""

    population: str
    norm_set: str
    source: str
    cutoff: float | None = None
    clinical_side: str | None = None  # 'below' or 'at_or_above'
    reliable_change: float | None = None
    clinical_mean: float | None = None
    clinical_sd: float | None = None
    functional_mean: float | None = None
    functional_sd: float | None = None
    reliability: float | None = None
    verified: bool = False

    def is_clinical(self, score: float) -> bool | None:
        """Whether a total score lies in the clinical range (None where there is no cut-off)."""
        if self.cutoff is None:
            return None
        return score < self.cutoff if self.clinical_side == "below" else score >= self.cutoff

    def describe_cutoff(self, code: str) -> str:
        """Plain words for the cut-off, e.g. 'SRS below 36'."""
        if self.cutoff is None:
            return f"{code}: no validated cut-off"
        side = "below" if self.clinical_side == "below" else "at or above"
        mark = "" if self.verified else " [unverified]"
        return f"{code} {side} {self.cutoff:g}{mark}"


@dataclass(frozen=True)
class Instrument:
    """One measure. Item wording is never stored, only item numbers and short domain labels."""

    code: str
    name: str
    construct: str
    min_score: float
    max_score: float
    higher_is_better: bool
    source: str
    n_items: int = 0
    item_min: float | None = None
    item_max: float | None = None
    item_labels: tuple[str, ...] = ()
    subscales: dict[str, tuple[int, ...]] = field(default_factory=dict)
    norms: tuple[Norm, ...] = ()

    def norm(self, population: str = "adult", norm_set: str = "default") -> Norm | None:
        """The norm for a population (falling back to adult, then to any) and norm set."""
        for pop in (population, "adult"):
            for n in self.norms:
                if n.population == pop and n.norm_set == norm_set:
                    return n
        return self.norms[0] if self.norms else None

    def severity(self, score):
        """Distance from the healthy end of the scale (docs/methods.md §4); works on scalars and arrays."""
        return self.max_score - score if self.higher_is_better else score - self.min_score


class Registry:
    """All known instruments, looked up case-insensitively."""

    def __init__(self, instruments: list[Instrument]):
        self._by_key: dict[str, Instrument] = {}
        for ins in instruments:
            self._by_key[ins.code.casefold()] = ins  # a later file may redefine a shipped instrument

    def __contains__(self, code: str) -> bool:
        return str(code).strip().casefold() in self._by_key

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, code: str) -> Instrument:
        """The instrument for a code as a user wrote it ('phq-9', ' ORS ')."""
        try:
            return self._by_key[str(code).strip().casefold()]
        except KeyError:
            known = ", ".join(sorted(i.code for i in self))
            raise KeyError(f"unknown instrument {code!r} (known: {known})") from None

    def canonical(self, code: str) -> str | None:
        """The registry spelling of a code, or None when unknown."""
        ins = self._by_key.get(str(code).strip().casefold())
        return ins.code if ins else None

    def frames(self) -> dict[str, pd.DataFrame]:
        """The registry as rows for the instrument, instrument_item and instrument_norm tables."""
        inst, items, norms = [], [], []
        for position, ins in enumerate(self):
            inst.append(
                dict(
                    position=position,
                    code=ins.code,
                    name=ins.name,
                    construct=ins.construct,
                    min_score=ins.min_score,
                    max_score=ins.max_score,
                    higher_is_better=ins.higher_is_better,
                    n_items=ins.n_items,
                    item_min=ins.item_min,
                    item_max=ins.item_max,
                    source=ins.source,
                )
            )
            sub_of = {i: name for name, nos in ins.subscales.items() for i in nos}
            for no in range(1, ins.n_items + 1):
                label = ins.item_labels[no - 1] if no <= len(ins.item_labels) else f"item {no}"
                items.append(dict(instrument=ins.code, item_no=no, label=label, subscale=sub_of.get(no)))
            for n in ins.norms:
                norms.append(
                    dict(instrument=ins.code, **{k: getattr(n, k) for k in Norm.__dataclass_fields__})
                )
        return {
            "instrument": pd.DataFrame(inst),
            "instrument_item": pd.DataFrame(items, columns=["instrument", "item_no", "label", "subscale"]),
            "instrument_norm": pd.DataFrame(norms),
        }


def _num(value, where: str, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RegistryError(f"{where}: {name} must be a number, got {value!r}")
    return float(value)


def _parse_instrument(raw: dict, where: str) -> Instrument:
    for key in ("code", "name", "construct", "min", "max", "higher_is_better", "source"):
        if key not in raw:
            raise RegistryError(f"{where}: missing required field {key!r}")
    code = str(raw["code"]).strip()
    where = f"{where} ({code})"
    if raw["construct"] not in CONSTRUCTS:
        raise RegistryError(f"{where}: construct must be one of {CONSTRUCTS}, got {raw['construct']!r}")
    lo, hi = _num(raw["min"], where, "min"), _num(raw["max"], where, "max")
    if lo >= hi:
        raise RegistryError(f"{where}: min ({lo:g}) must be below max ({hi:g})")
    if not isinstance(raw["higher_is_better"], bool):
        raise RegistryError(f"{where}: higher_is_better must be true or false")
    n_items = int(raw.get("n_items", 0))
    subscales = {str(k): tuple(int(i) for i in v) for k, v in raw.get("subscales", {}).items()}
    for name, nos in subscales.items():
        bad = [i for i in nos if not 1 <= i <= n_items]
        if bad:
            raise RegistryError(f"{where}: subscale {name} names items {bad} outside 1..{n_items}")
    norms = []
    for j, rn in enumerate(raw.get("norm", []), start=1):
        nw = f"{where} norm {j}"
        pop = rn.get("population", "adult")
        if pop not in POPULATIONS:
            raise RegistryError(f"{nw}: population must be one of {POPULATIONS}, got {pop!r}")
        if "source" not in rn:
            raise RegistryError(f"{nw}: every norm needs a source")
        side = rn.get("clinical_side")
        if rn.get("cutoff") is not None and side not in ("below", "at_or_above"):
            raise RegistryError(
                f"{nw}: clinical_side must be 'below' or 'at_or_above' when a cutoff is given"
            )
        cutoff = _num(rn.get("cutoff"), nw, "cutoff")
        if cutoff is not None and not lo <= cutoff <= hi:
            raise RegistryError(f"{nw}: cutoff {cutoff:g} outside the range {lo:g}–{hi:g}")
        norms.append(
            Norm(
                population=pop,
                norm_set=str(rn.get("norm_set", "default")),
                source=str(rn["source"]),
                cutoff=cutoff,
                clinical_side=side,
                reliable_change=_num(rn.get("reliable_change"), nw, "reliable_change"),
                clinical_mean=_num(rn.get("clinical_mean"), nw, "clinical_mean"),
                clinical_sd=_num(rn.get("clinical_sd"), nw, "clinical_sd"),
                functional_mean=_num(rn.get("functional_mean"), nw, "functional_mean"),
                functional_sd=_num(rn.get("functional_sd"), nw, "functional_sd"),
                reliability=_num(rn.get("reliability"), nw, "reliability"),
                verified=bool(rn.get("verified", False)),
            )
        )
    return Instrument(
        code=code,
        name=str(raw["name"]),
        construct=raw["construct"],
        min_score=lo,
        max_score=hi,
        higher_is_better=raw["higher_is_better"],
        source=str(raw["source"]),
        n_items=n_items,
        item_min=_num(raw.get("item_min"), where, "item_min"),
        item_max=_num(raw.get("item_max"), where, "item_max"),
        item_labels=tuple(str(x) for x in raw.get("items", ())),
        subscales=subscales,
        norms=tuple(norms),
    )


def load_registry(paths: list[Path] | None = None) -> Registry:
    """Read the shipped registry and any user files (later files may redefine an instrument)."""
    instruments = []
    for path in paths or config.registry_paths():
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RegistryError(f"instrument registry file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise RegistryError(f"{path}: not valid TOML: {exc}") from None
        for i, entry in enumerate(raw.get("instrument", []), start=1):
            instruments.append(_parse_instrument(entry, f"{path.name} instrument {i}"))
    return Registry(instruments)
