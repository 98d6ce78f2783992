"""Model configs: a value of the wrong type is a one-line error that names its key."""

import pytest

from boltzmatch.errors import BoltzmatchError
from boltzmatch.models import validate_config


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("n_interactions", "two", "an integer"), ("n_interactions", 2.5, "an integer"), ("cutoff", "far", "a number"),
    ("n_features", True, "an integer"),
])
def test_a_value_of_the_wrong_type_names_its_key(key, value, expected):
    # build_model used to say only "'str' object cannot be interpreted as an integer"
    with pytest.raises(BoltzmatchError, match=f"key '{key}' must be {expected}"):
        validate_config({"name": "schnet", key: value})


def test_right_types_pass_and_ints_count_as_numbers():
    config = validate_config({"name": "mlp", "elements": [1, 6], "cutoff": 4, "hidden": [32, 16], "angular": False})
    assert config["hidden"] == [32, 16] and config["cutoff"] == 4
    with pytest.raises(BoltzmatchError, match="key 'hidden' must be a list of numbers"):
        validate_config({"name": "mlp", "hidden": "wide"})
    with pytest.raises(BoltzmatchError, match="key 'angular' must be true or false"):
        validate_config({"name": "mlp", "angular": "yes"})
