"""Latent-space tools against what they claim: slerp's norms, the prior's norms computed (not
asserted from memory), grid spacings, the map convention, and the path measures of vaeviz.contrast."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from vaeviz import latent
from vaeviz.contrast import data_cloud, nearest_distance


def test_slerp_norm_moves_monotonically_between_unequal_end_norms():
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = int(rng.integers(2, 20))
        z0, z1 = rng.standard_normal(d) * rng.uniform(0.1, 5), rng.standard_normal(d) * rng.uniform(0.1, 5)
        path = latent.slerp(z0, z1, 25)
        norms = np.linalg.norm(path, axis=1)
        steps = np.diff(norms)
        assert (steps >= -1e-5).all() or (steps <= 1e-5).all()  # monotone
        lo, hi = sorted((np.linalg.norm(z0), np.linalg.norm(z1)))
        assert norms.min() >= lo - 1e-5 and norms.max() <= hi + 1e-5
        np.testing.assert_allclose(path[0], z0, atol=1e-5)
        np.testing.assert_allclose(path[-1], z1, atol=1e-5)


def test_slerp_follows_the_great_circle_of_directions():
    z0, z1 = np.array([2.0, 0.0, 0.0]), np.array([0.0, 0.5, 0.0])
    path = latent.slerp(z0, z1, 5)
    angles = np.degrees(np.arctan2(path[:, 1], path[:, 0]))
    np.testing.assert_allclose(angles, [0, 22.5, 45, 67.5, 90], atol=1e-4)  # equal angle steps
    assert np.allclose(path[:, 2], 0)


def test_shoemakes_formula_blows_up_where_ours_does_not():
    """The old formula with unequal norms and a wide angle: the midpoint far longer than either end."""
    z0, z1 = np.array([1.0, 0.0]), np.array([-3.0, 0.05])
    omega = np.arccos(np.dot(z0, z1) / np.linalg.norm(z0) / np.linalg.norm(z1))
    old_mid = (np.sin(0.5 * omega) * z0 + np.sin(0.5 * omega) * z1) / np.sin(omega)
    assert np.linalg.norm(old_mid) > 10 * 3  # what the issue saw
    assert np.linalg.norm(latent.slerp(z0, z1, 3)[1]) == pytest.approx((1.0 + np.linalg.norm(z1)) / 2, rel=1e-5)


@pytest.mark.parametrize("dim", [1, 2, 3, 16, 64])
def test_the_prior_norm_figures_match_sampling(dim):
    norms = np.linalg.norm(np.random.default_rng(dim).standard_normal((200_000, dim)), axis=1)
    facts = latent.prior_norm(dim)
    assert facts.median == pytest.approx(np.median(norms), rel=0.01)
    assert facts.low == pytest.approx(np.quantile(norms, 0.05), rel=0.02)
    assert facts.high == pytest.approx(np.quantile(norms, 0.95), rel=0.01)
    hist, edges = np.histogram(norms, bins=200, range=(0, norms.max()))
    smooth = np.convolve(hist, np.ones(9) / 9, mode="same")  # the histogram's top is flat: smooth it
    mode = edges[smooth.argmax()] + (edges[1] - edges[0]) / 2
    assert abs(mode - facts.mode) < 0.2 * max(facts.mode, 1)  # sqrt(D - 1): 0 for D = 1
    # "near sqrt(D)" holds only for large D: in 2-D the median is 1.18, not 1.41's shell
    assert facts.shell == (dim >= 16)


def test_quantile_spacing_is_the_priors_own_quantiles():
    values = latent.axis_values(5, span=3.0, spacing="quantile")
    expected = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, 5)]
    np.testing.assert_allclose(values, expected)  # not rescaled to the span
    np.testing.assert_allclose(latent.axis_values(5, 2.0, "linear"), np.linspace(-2, 2, 5))


def test_map_view_titles_and_round_trip():
    codes = np.random.default_rng(0).standard_normal((300, 6)).astype(np.float32) * [3, 2, 1, 1, 1, 1]
    view = latent.map_view(codes, "pca", (0, 1))
    assert view.axis_titles[0].startswith("PC1 (") and view.axis_titles[0].endswith("% of variance)")
    np.testing.assert_allclose(view.project(codes), view.coords, atol=1e-4)
    back = view.lift(view.coords[:5], codes[:5])
    np.testing.assert_allclose(back, codes[:5], atol=1e-4)  # off-plane parts kept from the base
    raw = latent.map_view(codes, "raw", (2, 4))
    assert raw.axis_titles == ("z3", "z5") and np.array_equal(raw.coords, codes[:, [2, 4]])
    one = latent.map_view(codes[:, :1], "pca")
    assert one.axis_titles == ("z1", "") and np.allclose(one.coords[:, 1], 0)
    with pytest.raises(ValueError):
        latent.map_view(codes, "tsne", tsne_coords=codes[:, :2]).project(codes)


def test_neighbour_units():
    grid = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0)), -1).reshape(-1, 2)  # spacing 1
    cloud = data_cloud(grid * 0.5, sample=200)
    assert cloud.scale == pytest.approx(0.5)
    assert cloud.distance(np.array([[0.25, 0.0]]))[0] == pytest.approx(0.5)  # half a gap away
    far = np.array([[100.0, 100.0]])
    brute = np.sqrt(((grid * 0.5 - far) ** 2).sum(1)).min()
    assert nearest_distance(grid * 0.5, far)[0] == pytest.approx(brute)
