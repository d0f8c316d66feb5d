"""The energy and emissions model behind ``sharklib report`` and ``--report`` (no I/O).

The Green Algorithms model (Lannelongue, Grealey & Inouye, *Green Algorithms:
Quantifying the Carbon Footprint of Computation*, Adv. Sci. 2021,
doi:10.1002/advs.202100707), restricted to the cores::

    energy (kWh)      = CPU time (h) x power per core (W) x PUE / 1000
    emissions (gCO2e) = energy (kWh) x grid carbon intensity (gCO2e/kWh)

Defaults are that tool's: 12 W per core (its "Any" CPU), PUE 1.67 (its default
data-centre efficiency), 475 gCO2e/kWh (the world average it and carbontracker
use, IEA 2019). Memory power is left out: sharklib does not record how much
memory a step held.
"""

from __future__ import annotations

from collections.abc import Mapping

from sharklib.config import ENV_CORE_WATTS, ENV_GRID_INTENSITY, ENV_PUE

DEFAULT_CORE_WATTS = 12.0
DEFAULT_PUE = 1.67
DEFAULT_GRID_INTENSITY = 475.0
MODEL_SOURCE = ("Green Algorithms (Lannelongue et al., Adv. Sci. 2021, doi:10.1002/advs.202100707): "
                "cores only; defaults 12 W/core ('Any' CPU), PUE 1.67, 475 gCO2e/kWh (world, IEA 2019)")
#: setting -> environment variable
ENV = {"core_watts": ENV_CORE_WATTS, "pue": ENV_PUE, "grid_intensity": ENV_GRID_INTENSITY}
#: set by ``sharklib run --report`` / ``pipeline run --report``: reuse lines state the saving


class EnergyModel:
    """Per-core power, PUE and grid intensity; kWh and gCO2e from CPU seconds."""

    __slots__ = ("core_watts", "grid_intensity", "pue", "source")

    def __init__(self, core_watts: float = DEFAULT_CORE_WATTS, pue: float = DEFAULT_PUE,
                 grid_intensity: float = DEFAULT_GRID_INTENSITY,
                 source: str = MODEL_SOURCE) -> None:
        self.core_watts, self.pue, self.grid_intensity = core_watts, pue, grid_intensity
        self.source = source

    def to_dict(self) -> dict[str, object]:
        return {"core_watts": self.core_watts, "pue": self.pue,
                "grid_intensity": self.grid_intensity, "source": self.source}

    def kwh(self, cpu_seconds: float) -> float:
        return cpu_seconds / 3600.0 * self.core_watts * self.pue / 1000.0

    def grams(self, cpu_seconds: float) -> float:
        return self.kwh(cpu_seconds) * self.grid_intensity

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnergyModel:
        """The defaults with any valid environment override (an invalid one is ignored here;
        ``sharklib report`` refuses it with one line)."""
        model = cls()
        for name, var in ENV.items():
            try:
                value = float(environ.get(var, ""))
            except ValueError:
                continue
            if 0 <= value < float("inf"):
                setattr(model, name, value)
        return model


def energy_text(kwh: float) -> str:
    if kwh < 1e-5:
        return f"{kwh * 1e6:.2f} mWh"
    return f"{kwh * 1000:.2f} Wh" if kwh < 1 else f"{kwh:.2f} kWh"


def grams_text(g: float, unit: str = "gCO2e") -> str:
    if g < 0.01:
        return f"{g * 1000:.2f} m{unit}"
    return f"{g:.2f} {unit}" if g < 1000 else f"{g / 1000:.2f} k{unit}"


def saving_text(cpu_seconds: float, model: EnergyModel) -> str:
    """``≈ 0.23 Wh, 0.11 gCO2e`` for one core busy that long."""
    return f"≈ {energy_text(model.kwh(cpu_seconds))}, {grams_text(model.grams(cpu_seconds))}"
