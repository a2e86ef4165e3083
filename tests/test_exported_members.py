"""The public API is what pipeline.__all__ lists, and each member says what it is for."""

import inspect

import pipeline


def test_all_names_exist_and_are_documented():
    for name in pipeline.__all__:
        member = getattr(pipeline, name)
        if inspect.isfunction(member) or inspect.isclass(member):
            assert (member.__doc__ or "").strip(), f"{name} has no docstring"


def test_public_names_are_listed():
    public = {n for n, v in vars(pipeline).items()
              if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))}
    assert public <= set(pipeline.__all__), public - set(pipeline.__all__)
