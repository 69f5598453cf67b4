import typing

import icrm


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(icrm) if not name.startswith("_")}  # lazy names (MockServer) included
    modules = {name for name in public if type(getattr(icrm, name)).__name__ == "module"}
    assert set(icrm.__all__) == public - modules


def test_public_classes_and_functions_have_docstrings():
    for name in icrm.__all__:
        obj = getattr(icrm, name)
        if callable(obj) and typing.get_origin(obj) is None:
            assert obj.__doc__ and obj.__module__.startswith("icrm"), f"{name} has no docstring of its own"
