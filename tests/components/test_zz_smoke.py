import pytest
pytestmark = pytest.mark.ml
def test_smoke(trained):
    print({n: (r.state, round(r.duration, 2), r.error) for n, r in trained.nodes.items()})
