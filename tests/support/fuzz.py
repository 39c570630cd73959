"""What the property-based (hypothesis) tests share: the values a client might send, and what no reply may show.

The decoder, the argument checks and a real daemon are fuzzed with the same
kinds of values, so a shape that breaks one is tried on all three.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

#: What no message for people may hold (issue 12, section 2): addresses, tracebacks, object reprs.
INTERNALS = re.compile(r"0x[0-9a-f]{6}|Traceback|<.* object at")

#: JSON scalars, including integers too big for a float and non-finite floats.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400).flatmap(lambda n: st.sampled_from([n, -n]))  # beyond float
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)


def json_values(scalars: st.SearchStrategy = SCALARS, size: int = 3) -> st.SearchStrategy:
    """Nested lists and objects of ``scalars``, at most ``size`` wide and ``4 * size`` leaves."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=size) | st.dictionaries(st.text(max_size=4 * size), inner, max_size=size)
        ),
        max_leaves=4 * size,
    )
