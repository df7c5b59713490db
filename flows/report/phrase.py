"""Figures written the way the annual summary writes them (pure: no I/O).

A report template writes a figure as ``{figure.id}`` (the exact value) or
``{figure.id:STYLE}``. STYLE says how the figure is rounded; the qualifier the sentence
gets is then chosen from the computed value, so it is true of that value:

=========  =================================================================  ==============
token      meaning                                                            example
=========  =================================================================  ==============
``万``      the number is written in 万 (ten thousands)                        ``349.88万``
``汉``      Chinese numerals (cn2an's; ``两``, ``十``, ``百`` alone: IDIOMS)    ``十余``
``余N``     rounded down to a multiple of N; ``余`` only if something was cut  ``20000余``
``超N``     rounded down to a multiple of N; ``超`` only if something was cut  ``超2000``
``近N/T``   rounded up to a multiple of N; ``近`` if that is at most T above   ``近3500``
            (default T = N/5); further below, written as ``余N`` instead
``约N/T``   rounded to the nearest multiple of N; ``约`` if within T           ``约350``
            (default N/5); further off, the exact value
=========  =================================================================  ==============

N and T are in the unit written (in 万 after ``万``). With no rounding token a value in
万 is written with as many decimals as it needs, up to N = 0.01, and ``余`` if more were
cut. Where rounding down would leave nothing (``余1000`` of 400), N is divided by ten
until it does not. Examples: ``万余0.01`` of 3,498,856.37 gives ``349.88万余``; ``万余1``
of 700,000.01 gives ``70余万``; ``万汉近100/5`` of 958,000 gives ``近百万``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from flows.errors import ConfigError

WAN = Decimal(10000)
FINEST = Decimal("0.01")
_STYLE = re.compile(
    r"^(?P<flags>[万汉]*)(?:(?P<q>[余超近约])(?P<step>\d+(?:\.\d+)?)(?:/(?P<tol>\d+(?:\.\d+)?))?)?"
    r"(?P<flags2>[万汉]*)$"
)


@dataclass(frozen=True)
class Style:
    wan: bool = False
    chinese: bool = False
    qualifier: str | None = None
    step: Decimal | None = None
    tolerance: Decimal | None = None

    @property
    def tol(self) -> Decimal:
        assert self.step is not None
        return self.tolerance if self.tolerance is not None else self.step / 5


def parse_style(text: str) -> Style:
    """``'万余0.01'`` -> Style(wan=True, qualifier='余', step=0.01). Raises ConfigError."""
    m = _STYLE.match(text.strip())
    if not m:
        raise ConfigError(
            f"figure style {text!r}: expected e.g. 万余0.01, 近500, 约50/10, 汉 (see flows/report/phrase.py)"
        )
    flags = (m["flags"] or "") + (m["flags2"] or "")
    step = Decimal(m["step"]) if m["step"] else None
    if step is not None and step <= 0:
        raise ConfigError(f"figure style {text!r}: the step must be positive")
    return Style(
        wan="万" in flags,
        chinese="汉" in flags,
        qualifier=m["q"],
        step=step,
        tolerance=Decimal(m["tol"]) if m["tol"] else None,
    )


IDIOMS = {2: "两", 10: "十", 100: "百", 1000: "千"}
"""Where the seed's idiom differs from cn2an's numeral: 两期, 十余场, 近百万 (a round 百 or 千 that
stands alone drops its 一: 百, 千; 10 is 十 in both)."""


def chinese_numeral(n: int) -> str:
    """The number in Chinese numerals as the summary writes it: cn2an's digits (一万一千,
    一万零一百, 一百万二千二百零二), with the seed's idioms for a number standing alone (IDIOMS)."""
    if n < 0:
        raise ValueError(f"no Chinese numeral here for {n}: the sign is written by phrase()")
    if n in IDIOMS:
        return IDIOMS[n]
    import cn2an  # imported here: a tenth of a second that only the 汉 style needs

    return str(cn2an.an2cn(n, "low"))


def _number(x: Decimal, chinese: bool) -> str:
    x = x.normalize() if x != x.to_integral_value() else x.quantize(Decimal(1))
    if chinese and x == x.to_integral_value():
        return chinese_numeral(int(x))
    text = format(x, "f")
    return text


def _floor(x: Decimal, step: Decimal) -> Decimal:
    return (x / step).to_integral_value(ROUND_FLOOR) * step


def phrase(value: Decimal | float | str, style: Style | str = "") -> str:
    """The figure as the summary writes it, without its unit (the template carries that)."""
    st = parse_style(style) if isinstance(style, str) else style
    v = Decimal(str(value))
    x = v / WAN if st.wan else v
    if v < 0:
        # A sum can be negative (reversals outweighing payments in a year): stated exactly, with
        # its sign, never rounded with 余/近/约 (which read as "more than"/"nearly" a size).
        return ("负" if st.chinese else "-") + _shown(-x, -x, None, st)
    q, step = st.qualifier, st.step
    if q is None:
        if st.wan:
            q, step = "余", FINEST
        else:
            return _shown(x, x, None, st)
    if q == "约":
        assert step is not None
        near = (x / step).to_integral_value(ROUND_HALF_UP) * step
        if abs(near - x) <= st.tol and near > 0:
            return _shown(near, x, "约", st)
        return _shown(x, x, None, st)
    if q == "近":
        assert step is not None
        up = (x / step).to_integral_value(ROUND_CEILING) * step
        if up == x:
            return _shown(x, x, None, st)
        if up - x <= st.tol:
            return _shown(up, x, "近", st)
        q = "余"  # too far below a round number to be "nearly" it: say what it exceeds
    assert step is not None
    down = _floor(x, step)
    while down == 0 and step > FINEST and x > 0:
        step = step / 10
        down = _floor(x, step)
    if down == 0:
        return _shown(x, x, None, st)
    return _shown(down, x, q if down != x else None, st)


def _shown(shown: Decimal, actual: Decimal, qualifier: str | None, st: Style) -> str:
    number = _number(shown, st.chinese)
    if qualifier is None:
        if actual != shown:  # only an exact value is written bare
            raise AssertionError("unreachable: an inexact figure needs a qualifier")
        return number + ("万" if st.wan else "")
    if qualifier in ("近", "约", "超"):
        return qualifier + number + ("万" if st.wan else "")
    # 余: "70余万" for whole 万, "349.88万余" with decimals, "20000余" without 万
    if st.wan:
        return number + ("余万" if shown == shown.to_integral_value() else "万余")
    return number + "余"
