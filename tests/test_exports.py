"""The names a user's test may import from the package itself, whatever the modules' layout."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

import pytest_staging


def test_public_exceptions_are_importable_from_the_package_and_keep_that_name():
    from pytest_staging import ContractError, SensitiveRedirectError

    assert f"{ContractError.__module__}.{ContractError.__qualname__}" == "pytest_staging.ContractError"
    assert issubclass(ContractError, AssertionError)
    assert (
        f"{SensitiveRedirectError.__module__}.{SensitiveRedirectError.__qualname__}"
        == "pytest_staging.SensitiveRedirectError"
    )
    assert pickle.loads(pickle.dumps(ContractError("x"))).args == ("x",)  # found again by its public name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Nope"):
        pytest_staging.Nope  # noqa: B018


def test_importing_the_package_loads_neither_requests_nor_jsonschema():
    code = "import sys, pytest_staging; print(sorted({'requests', 'jsonschema'} & set(sys.modules)))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )
