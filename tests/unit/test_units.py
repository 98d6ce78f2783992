import pytest
from ase import units

from boltzmatch.errors import BoltzmatchError
from boltzmatch.units import boltzmann_beta, energy_factor, length_factor


def test_energy_factors_match_ase_constants():
    assert energy_factor("kcal/mol") == units.kcal / units.mol
    assert energy_factor("Hartree") == units.Hartree
    assert energy_factor("Ha") == units.Hartree
    assert energy_factor("kJ/mol") == units.kJ / units.mol
    assert energy_factor("eV") == 1.0
    assert energy_factor(None) == 1.0
    assert energy_factor("kcal/mol") == pytest.approx(0.0433641, rel=1e-5)


def test_length_factors_match_ase_constants():
    assert length_factor("bohr") == units.Bohr
    assert length_factor("Ang") == 1.0
    assert length_factor("nm") == 10.0


def test_unknown_unit_is_one_line_error():
    with pytest.raises(BoltzmatchError, match="unknown energy unit 'furlong'"):
        energy_factor("furlong")


def test_beta_at_300K():
    assert boltzmann_beta(300.0) == pytest.approx(1 / (units.kB * 300.0))
    with pytest.raises(BoltzmatchError):
        boltzmann_beta(0.0)

