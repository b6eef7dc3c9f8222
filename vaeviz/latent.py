"""Latent-space tools: grids, interpolation paths, projections, neighbours, image mosaics.

Numpy in, numpy out where the app caches results; torch only where a model is called. A latent
code is a row vector of length D; a batch of codes is (N, D).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from .models import Model

SPACINGS = ("linear", "quantile")
PATHS = ("linear", "spherical")


# --- calling a model -------------------------------------------------------------------------


@torch.no_grad()
def encode(model: Model, images: torch.Tensor, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode images (N, C, H, W) -> (mu (N, D), logvar (N, D) or None) as float32 numpy."""
    model.eval()
    device = model.device
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(images[start : start + batch_size].to(device))
        mus.append(mu.float().cpu().numpy())
        if logvar is not None:
            logvars.append(logvar.float().cpu().numpy())
    mu_all = np.concatenate(mus) if mus else np.zeros((0, model.cfg.latent_dim), np.float32)
    return mu_all, (np.concatenate(logvars) if logvars else None)


@torch.no_grad()
def decode(model: Model, codes: np.ndarray) -> np.ndarray:
    """Decode codes (N, D) -> images (N, H, W) (or (N, H, W, C) for colour) as float32 in [0, 1]."""
    model.eval()
    device = model.device
    z = torch.as_tensor(np.asarray(codes, dtype=np.float32).reshape(-1, model.cfg.latent_dim), device=device)
    return pictures(model.decode(z))


# --- grids -----------------------------------------------------------------------------------


def axis_values(n: int, span: float = 3.0, spacing: str = "linear") -> np.ndarray:
    """n values along one latent axis.

    "linear": evenly from -span to span (`span` applies to this spacing only). "quantile": the
    standard normal's quantiles at evenly spaced probabilities 0.05 ... 0.95, unscaled (Kingma &
    Welling's manifold figures): each cell holds the same share of the prior, so the grid spends
    more images near the prior's centre, and its outermost values are +-1.64.
    """
    if n < 1:
        raise ValueError("a grid needs at least one value per axis")
    if spacing == "linear":
        return np.linspace(-span, span, n) if n > 1 else np.zeros(1)
    if spacing == "quantile":
        probs = np.linspace(0.05, 0.95, n) if n > 1 else np.array([0.5])
        return np.array([NormalDist().inv_cdf(p) for p in probs])
    raise ValueError(f"unknown spacing {spacing!r}; expected linear or quantile")


def latent_grid(base: np.ndarray, directions: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Codes on a 2-D grid through `base` (D,) along two `directions` (2, D).

    Returns (len(ys) * len(xs), D), row-major with y decreasing down the rows (so a mosaic of the
    decoded images reads like a plot: up is +y).
    """
    base = np.asarray(base, dtype=np.float32)
    directions = np.asarray(directions, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys[::-1])  # (ny, nx) each
    return (base[None] + gx.reshape(-1, 1) * directions[0] + gy.reshape(-1, 1) * directions[1]).astype(np.float32)


def unit_directions(latent_dim: int, dims: tuple[int, int]) -> np.ndarray:
    """Two coordinate axes of the latent space as direction rows (2, D)."""
    eye = np.eye(latent_dim, dtype=np.float32)
    return eye[list(dims)]


# --- interpolation ---------------------------------------------------------------------------


def lerp(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """`steps` codes on the straight line from z0 to z1, both ends included: (steps, D)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * z0[None] + t * z1[None]).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation: the direction moves along the great circle from z0's to z1's, and the
    norm moves linearly from |z0| to |z1|; both ends included. (steps, D).

    This is the form that assumes a Gaussian prior (White, 2016): in high dimensions its typical
    codes lie in a thin shell, and a straight line between two of them dips inside it. With ends of
    equal norm it is Shoemake's slerp; unlike Shoemake's formula it stays between the two end norms
    when they differ (that one's midpoint can be many times longer than either end). For an AE,
    whose codes follow no prior, it is just another path. Falls back to lerp when either end is at
    the origin or the two directions are (anti)parallel, where no single great circle is defined.
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < 1e-8 or n1 < 1e-8:
        return lerp(z0, z1, steps)
    u0, u1 = z0 / n0, z1 / n1
    omega = np.arccos(np.clip(np.dot(u0, u1), -1.0, 1.0))
    if omega < 1e-4 or np.pi - omega < 1e-4:
        return lerp(z0, z1, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    direction = (np.sin((1 - t) * omega) * u0[None] + np.sin(t * omega) * u1[None]) / np.sin(omega)  # unit rows
    return (((1 - t) * n0 + t * n1) * direction).astype(np.float32)


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, path: str = "linear") -> np.ndarray:
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps (the two ends)")
    if path == "linear":
        return lerp(np.asarray(z0, np.float32), np.asarray(z1, np.float32), steps)
    if path == "spherical":
        return slerp(z0, z1, steps)
    raise ValueError(f"unknown path {path!r}; expected linear or spherical")


# --- the prior's norms --------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorNorm:
    """How long codes drawn from N(0, I) in D dimensions are: |z| follows a chi distribution."""

    dim: int
    mode: float  # the most likely |z|: sqrt(D - 1) (0 in 1-D, where the origin is densest)
    median: float
    low: float  # 5 % of draws are shorter
    high: float  # 5 % are longer

    @property
    def shell(self) -> bool:
        """Whether the norms concentrate in a thin shell (the 5-95 % range within a third of the median)."""
        return (self.high - self.low) < self.median / 1.5

    def sentence(self) -> str:
        if self.dim == 1:
            return ("In 1-D the prior's densest point is the origin; half of all draws lie within "
                    f"{self.median:.2f} of it.")
        text = (f"Under the prior N(0, I) in {self.dim}-D, |z| is most often {self.mode:.2f}, its median is "
                f"{self.median:.2f}, and 90 % of draws have |z| between {self.low:.2f} and {self.high:.2f}")
        if self.shell:
            text += f": a shell around √{self.dim} = {np.sqrt(self.dim):.2f}, though the densest point is still the origin"
        return text + "."


def prior_norm(dim: int) -> PriorNorm:
    from scipy.stats import chi

    dist = chi(dim)
    return PriorNorm(dim, float(np.sqrt(max(dim - 1, 0))), float(dist.median()), float(dist.ppf(0.05)),
                     float(dist.ppf(0.95)))


# --- projections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """A PCA of codes: `transform` maps codes (N, D) to coordinates (N, k), `inverse` maps back."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), orthonormal rows, by decreasing variance
    explained_variance_ratio: np.ndarray  # (k,)

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return (np.asarray(codes, np.float32) - self.mean) @ self.components.T

    def inverse(self, coords: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Codes whose projection is `coords`; off-plane parts taken from `base` (default the mean)."""
        coords = np.atleast_2d(np.asarray(coords, np.float32))
        k = coords.shape[1]
        comps = self.components[:k]
        anchor = self.mean if base is None else np.asarray(base, np.float32)
        off_plane = anchor - ((anchor - self.mean) @ comps.T) @ comps  # anchor with its in-plane part removed
        return (off_plane[None] + coords @ comps).astype(np.float32)


def pca(codes: np.ndarray, n_components: int | None = None) -> Projection:
    """PCA of codes (N, D) by SVD; signs fixed (largest |entry| of each direction positive)."""
    codes = np.asarray(codes, np.float64)
    n, d = codes.shape
    k = min(n_components or d, d, n)
    mean = codes.mean(0)
    _, s, vt = np.linalg.svd(codes - mean, full_matrices=False)
    comps = vt[:k]
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])
    comps = comps * signs[:, None]
    var = s**2 / max(n - 1, 1)
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return Projection(mean.astype(np.float32), comps.astype(np.float32), ratio.astype(np.float32))


MAP_METHODS = ("raw", "pca", "tsne")


@dataclass(frozen=True)
class MapView:
    """How codes become 2-D map coordinates: x = (z - origin) . directions[0], y likewise.

    The one map convention of every page: raw coordinates are titled "z1", "z2"; principal
    directions "PC1 (34% of variance)"; t-SNE "t-SNE 1", which has no directions (no way from
    new codes to the plane, nor back).
    """

    method: str  # "raw", "pca" or "tsne"
    axis_titles: tuple[str, str]
    coords: np.ndarray  # (N, 2) of the codes the view was made from
    origin: np.ndarray | None = None  # (D,)
    directions: np.ndarray | None = None  # (2, D), orthonormal rows (a zero row for a 1-D latent)

    @property
    def invertible(self) -> bool:
        return self.directions is not None

    def project(self, codes: np.ndarray) -> np.ndarray:
        """Map coordinates (M, 2) of new codes (M, D); only for raw and PCA views."""
        if self.directions is None:
            raise ValueError("a t-SNE map has no projection for new codes")
        return (np.atleast_2d(np.asarray(codes, np.float32)) - self.origin) @ self.directions.T

    def lift(self, xy: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Codes (M, D) at map coordinates (M, 2): off-plane parts from `base` (default the origin)."""
        if self.directions is None:
            raise ValueError("a t-SNE map has no way back to codes")
        xy = np.atleast_2d(np.asarray(xy, np.float32))
        anchor = np.atleast_2d(self.origin if base is None else np.asarray(base, np.float32))  # (1 or M, D)
        off_plane = anchor - ((anchor - self.origin) @ self.directions.T) @ self.directions
        return (off_plane + xy @ self.directions).astype(np.float32)


def map_view(codes: np.ndarray, method: str = "pca", dims: tuple[int, int] = (0, 1), *,
             projection: Projection | None = None, tsne_coords: np.ndarray | None = None) -> MapView:
    """The map of codes (N, D) under `method`: "raw" (latent dimensions `dims`), "pca" (principal
    directions `dims` of `projection`, computed here if not given) or "tsne" (`tsne_coords`).

    A 1-D latent is drawn along z1 whatever the method; a 2-D one's PCA is still a rotation of it.
    """
    codes = np.asarray(codes, np.float32)
    d = codes.shape[1]
    a, b = dims
    if d == 1:
        directions = np.array([[1.0], [0.0]], np.float32)
        return MapView("raw", ("z1", ""), codes @ directions.T, np.zeros(1, np.float32), directions)
    if method == "raw":
        directions = np.eye(d, dtype=np.float32)[[a, b]]
        return MapView("raw", (f"z{a + 1}", f"z{b + 1}"), codes[:, [a, b]], np.zeros(d, np.float32), directions)
    if method == "pca":
        proj = projection if projection is not None else pca(codes)
        ratio = proj.explained_variance_ratio
        directions = proj.components[[a, b]]
        titles = (f"PC{a + 1} ({ratio[a]:.0%} of variance)", f"PC{b + 1} ({ratio[b]:.0%} of variance)")
        return MapView("pca", titles, (codes - proj.mean) @ directions.T, proj.mean, directions)
    if method == "tsne":
        if tsne_coords is None:
            tsne_coords = tsne(codes)
        return MapView("tsne", ("t-SNE 1", "t-SNE 2"), np.asarray(tsne_coords, np.float32))
    raise ValueError(f"unknown map method {method!r}; expected one of {', '.join(MAP_METHODS)}")


def tsne(codes: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """A 2-D t-SNE embedding of codes (N, D) (scikit-learn; PCA initialisation; seconds for 2k points)."""
    from sklearn.manifold import TSNE

    codes = np.asarray(codes, np.float32)
    perplexity = min(perplexity, max(2.0, (len(codes) - 1) / 3))
    return TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(codes)


def nearest(codes: np.ndarray, query: np.ndarray, k: int = 8) -> np.ndarray:
    """Indices of the k codes nearest to `query` (D,) in Euclidean distance, nearest first."""
    d2 = ((np.asarray(codes, np.float32) - np.asarray(query, np.float32)[None]) ** 2).sum(1)
    k = min(k, len(d2))
    idx = np.argpartition(d2, k - 1)[:k]
    return idx[np.argsort(d2[idx])]


def ellipse_offsets(logvar: np.ndarray, directions: np.ndarray, n_sigma: float = 2.0, points: int = 64) -> np.ndarray:
    """The n-sigma ellipse of N(0, diag(exp(logvar))) projected onto two directions (2, D).

    Returns (points, 2) offsets: add the projected posterior mean to place it on a map.
    """
    cov = directions @ np.diag(np.exp(logvar)) @ directions.T  # (2, 2): W Sigma W^T
    evals, evecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, points)
    circle = np.stack([np.cos(t), np.sin(t)], 1) * (n_sigma * np.sqrt(np.maximum(evals, 0)))[None]
    return circle @ evecs.T


# --- pictures --------------------------------------------------------------------------------


def mosaic(images: np.ndarray, cols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, H, W) into one (rows*(H+pad)-pad, cols*(W+pad)-pad) array, row-major."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, *images.shape[3:]), pad_value, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return out


def pictures(images) -> np.ndarray:
    """Images (N, C, H, W), tensor or array, as pictures: (N, H, W) grey or (N, H, W, C) colour, numpy."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images)
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so a 28x28 digit stays crisp on a projector."""
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
