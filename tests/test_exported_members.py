"""The public API is what pipeline.__all__ lists, and each member says what it is for."""

import inspect

import pipeline


def test_all_names_exist_and_are_documented():
    for name in pipeline.__all__:
        member = getattr(pipeline, name)
        if inspect.isfunction(member) or inspect.isclass(member):
            assert (member.__doc__ or "").strip(), f"{name} has no docstring"


def test_public_names_are_listed():
    public = {
        n
        for n, v in vars(pipeline).items()
        if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
    }
    assert public <= set(pipeline.__all__), public - set(pipeline.__all__)


def test_every_listed_name_has_a_home_and_loads_lazily():
    """`import pipeline` stays light: each public name maps to its module and loads on first use."""
    import subprocess
    import sys

    assert set(pipeline.__all__) == set(pipeline._WHERE) | {"__version__"}
    code = (
        "import sys, pipeline; heavy = [m for m in ('pandas', 'jinja2', 'jsonschema', "
        "'requests', 'PIL', 'tqdm') if m in sys.modules]; print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
