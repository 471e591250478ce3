"""The instrument registry: shipped numbers match docs/methods.md §3, lookups are case-insensitive, user files
add instruments without code changes, and malformed files are refused with the field named."""

from pathlib import Path

import pytest

from alliance.registry import RegistryError, load_registry

SHIPPED = {"ORS", "SRS", "WAI-SR", "PHQ-9", "GAD-7", "CORE-10", "OQ-45"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_ships_the_seven_default_instruments(registry):
    assert {i.code for i in registry} == SHIPPED


@pytest.mark.parametrize("written", ["phq-9", "PHQ-9", " Phq-9 ", "wai-sr", "ors"])
def test_codes_match_case_insensitively(registry, written):
    assert registry.canonical(written) == written.strip().upper()


def test_unknown_code_is_none_and_get_names_the_known_ones(registry):
    assert registry.canonical("BDI-II") is None
    with pytest.raises(KeyError, match="known: CORE-10"):
        registry.get("BDI-II")


# Numbers from docs/methods.md §3 (each with its source in data/instruments.toml).
@pytest.mark.parametrize(
    "code, lo, hi, higher_better, construct, cutoff, side, rc",
    [
        ("ORS", 0, 40, True, "outcome", 25, "below", 5),
        ("SRS", 0, 40, True, "alliance", 36, "below", None),
        ("PHQ-9", 0, 27, False, "outcome", 10, "at_or_above", 6),
        ("GAD-7", 0, 21, False, "outcome", 8, "at_or_above", 4),
        ("CORE-10", 0, 40, False, "outcome", 11, "at_or_above", 6),
        ("OQ-45", 0, 180, False, "outcome", 64, "at_or_above", 14),
    ],
)
def test_adult_norms_follow_domain_table(registry, code, lo, hi, higher_better, construct, cutoff, side, rc):
    ins = registry.get(code)
    assert (ins.min_score, ins.max_score, ins.higher_is_better, ins.construct) == (
        lo,
        hi,
        higher_better,
        construct,
    )
    norm = ins.norm("adult")
    assert (norm.cutoff, norm.clinical_side, norm.reliable_change) == (cutoff, side, rc)
    assert norm.source


def test_population_norms_and_fallback(registry):
    ors = registry.get("ORS")
    assert ors.norm("child").cutoff == 32 and ors.norm("adolescent").cutoff == 28
    assert registry.get("PHQ-9").norm("adolescent").population == "adult"  # falls back to adult
    assert registry.get("OQ-45").norm("adult", "NL").cutoff == 56
    assert registry.get("OQ-45").norm("adult", "NL").reliable_change == 18


def test_wai_sr_has_subscales_and_no_cutoff(registry):
    wai = registry.get("WAI-SR")
    assert (wai.min_score, wai.max_score, wai.n_items) == (12, 60, 12)
    assert wai.subscales == {"Task": (1, 2, 10, 12), "Bond": (3, 5, 7, 9), "Goal": (4, 6, 8, 11)}
    assert wai.norm() is None


def test_unverified_numbers_are_labelled(registry):
    assert "[unverified]" in registry.get("ORS").norm().describe_cutoff("ORS")
    assert "[unverified]" not in registry.get("PHQ-9").norm().describe_cutoff("PHQ-9")


def test_severity_is_distance_from_the_healthy_end(registry):
    # docs/methods.md §4: max − score for higher-better, score − min for lower-better.
    assert registry.get("ORS").severity(31) == 9
    assert registry.get("WAI-SR").severity(50) == 10
    assert registry.get("PHQ-9").severity(14) == 14


def test_user_file_adds_an_instrument(tmp_path: Path):
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[[instrument]]\ncode = "BDI-II"\nname = "Beck Depression Inventory II"\nconstruct = "outcome"\n'
        'min = 0\nmax = 63\nhigher_is_better = false\nsource = "Beck et al. 1996"\n'
        '  [[instrument.norm]]\n  population = "adult"\n  cutoff = 14\n  clinical_side = "at_or_above"\n'
        '  reliable_change = 7\n  source = "Tang & DeRubeis 1999 convention"\n'
    )
    reg = load_registry([Path("data/instruments.toml"), extra])
    assert reg.canonical("bdi-ii") == "BDI-II" and len(reg) == 8
    assert reg.get("BDI-II").norm().reliable_change == 7


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'code = "X"\nname = "x"\nconstruct = "mood"\nmin = 0\nmax = 5\nhigher_is_better = true\nsource = "s"',
            "construct must be one of",
        ),
        (
            'code = "X"\nname = "x"\nconstruct = "outcome"\nmin = 5\nmax = 5\nhigher_is_better = true\nsource = "s"',
            "min .5. must be below max",
        ),
        (
            'code = "X"\nname = "x"\nconstruct = "outcome"\nmin = 0\nmax = 5\nhigher_is_better = true',
            "missing required field 'source'",
        ),
        (
            'code = "X"\nname = "x"\nconstruct = "outcome"\nmin = 0\nmax = 5\nhigher_is_better = true\nsource = "s"\n'
            '[[instrument.norm]]\ncutoff = 9\nclinical_side = "below"\nsource = "s"',
            "cutoff 9 outside the range 0–5",
        ),
    ],
)
def test_malformed_files_are_refused_with_the_field_named(tmp_path, body, message):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[instrument]]\n" + body + "\n")
    with pytest.raises(RegistryError, match=message):
        load_registry([bad])
