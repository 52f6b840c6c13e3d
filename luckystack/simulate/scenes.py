"""Truth scenes: Jupiter-like disc with a moon, Saturn with its rings, lunar surface, solar granulation
(RGB float32, 0..1).

Each scene is drawn on a canvas of the frame size plus ``margin`` px on every side (so that shifted frames
of a surface scene still see real surface); the frame's zero-shift view is ``canvas[m:m+H, m:m+W]``.
Everything is deterministic from the ``rng`` passed in. Scenes peak near 1.0; the simulation scales them.
"""

from __future__ import annotations

import cv2
import numpy as np

from luckystack.simulate.fields import fractal_noise

SCENES = ("jupiter", "saturn", "moon", "sun")
PLANETS = ("jupiter", "saturn")  # discs on dark sky; the others fill the frame
LUMINANCE = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Jupiter's bands: (southern edge latitude in degrees, brightness, RGB colour), north is up (negative y).
_BANDS = [
    (-90, 0.55, (0.78, 0.74, 0.70)),  # south polar region
    (-45, 0.72, (0.86, 0.80, 0.72)),  # south temperate zones
    (-36, 0.58, (0.80, 0.66, 0.52)),  # south-south temperate belt
    (-33, 0.86, (0.94, 0.90, 0.82)),  # south temperate zone
    (-29, 0.60, (0.82, 0.64, 0.48)),  # south temperate belt
    (-25, 0.95, (0.97, 0.94, 0.86)),  # south tropical zone (Great Red Spot)
    (-19, 0.62, (0.86, 0.62, 0.42)),  # south equatorial belt
    (-7, 0.92, (0.96, 0.90, 0.76)),  # equatorial zone
    (7, 0.56, (0.80, 0.58, 0.40)),  # north equatorial belt
    (18, 0.90, (0.96, 0.92, 0.84)),  # north tropical zone
    (24, 0.62, (0.82, 0.66, 0.52)),  # north temperate belt
    (31, 0.82, (0.92, 0.88, 0.80)),  # north temperate zone
    (37, 0.64, (0.82, 0.72, 0.62)),  # north-north temperate belt
    (42, 0.70, (0.84, 0.80, 0.74)),  # north polar region
]


def render_scene(name: str, height: int, width: int, margin: int, rng: np.random.Generator,
                 planet_diameter: float = 0.4, optics_px: float = 0.5) -> np.ndarray:
    """The (height+2m, width+2m, 3) float32 RGB canvas of scene ``name``, band-limited by a Gaussian
    of ``optics_px`` (the telescope's resolution, so interpolating the truth is accurate)."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; choose one of {', '.join(SCENES)}")
    h, w = height + 2 * margin, width + 2 * margin
    if name == "jupiter":
        canvas = _jupiter(rng, h, w, planet_diameter * width / 2.0)
    elif name == "saturn":  # the rings span twice planet_diameter: the globe is about Jupiter's size
        canvas = _saturn(rng, h, w, planet_diameter * width / _RINGS[-1][1])
    elif name == "moon":
        canvas = _moon(rng, h, w, min(height, width))
    else:
        canvas = _sun(rng, h, w, min(height, width))
    if name not in PLANETS:  # surfaces: highlights (99.8th percentile) at 0.95
        canvas = canvas * (0.95 / max(float(np.percentile(canvas @ LUMINANCE, 99.8)), 1e-6))
    if optics_px > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), optics_px, borderType=cv2.BORDER_REFLECT)
    return np.clip(canvas, 0.0, None).astype(np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _ellipse(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float, a: float, b: float) -> np.ndarray:
    """Normalised elliptical radius (1 on the edge) in texture coordinates."""
    return np.sqrt(((lon - lon0) / a) ** 2 + ((lat - lat0) / b) ** 2)


def _jupiter_texture(rng: np.random.Generator, th: int, tw: int) -> np.ndarray:
    """Band texture over latitude (rows, -90..90 deg, north up) and longitude (cols, -90..90 deg)."""
    lat = np.linspace(np.pi / 2, -np.pi / 2, th, dtype=np.float32)[:, None] * np.ones((1, tw), np.float32)
    lon = np.linspace(-np.pi / 2, np.pi / 2, tw, dtype=np.float32)[None, :] * np.ones((th, 1), np.float32)
    swirl = fractal_noise(rng, th, tw, th / 10, octaves=5, aspect=3.0, persistence=0.6)
    fine = fractal_noise(rng, th, tw, th / 40, octaves=3, aspect=2.0)
    lat_deg = np.degrees(lat + 0.018 * swirl)
    edges = np.array([b[0] for b in _BANDS] + [90.0], dtype=np.float32)
    profile_lat = np.linspace(-90, 90, 3601, dtype=np.float32)
    index = np.clip(np.searchsorted(edges, profile_lat, side="right") - 1, 0, len(_BANDS) - 1)
    values = np.array([[b[1] * c for c in b[2]] for b in _BANDS], dtype=np.float32)[index]
    values = cv2.GaussianBlur(values[:, None, :], (1, 0), sigmaX=0.1, sigmaY=12.0)[:, 0, :]  # soft band edges
    rgb = np.stack([np.interp(lat_deg, profile_lat, values[:, c]) for c in range(3)], axis=-1)
    beltness = 1.0 - np.interp(lat_deg, profile_lat, values.mean(axis=1)) / values.mean(axis=1).max()
    rgb *= (1.0 + (0.05 + 0.25 * beltness) * (0.6 * swirl + 0.4 * fine))[..., None]
    # Great Red Spot with its pale hollow, white ovals, dark festoons and barges.
    lon0 = float(rng.uniform(-0.5, 0.5))
    r = _ellipse(lon, lat, lon0, np.radians(-22.0), 0.21, 0.075)
    hollow = np.exp(-(((r - 1.15) / 0.25) ** 2))
    rgb = rgb * (1 + 0.08 * hollow[..., None]) + 0.04 * hollow[..., None]
    spot = _smoothstep((1.05 - r) / 0.2)
    grs = np.array([0.86, 0.50, 0.36], np.float32) * (0.92 + 0.08 * swirl[..., None] * (1 - r[..., None]))
    rgb = rgb * (1 - spot[..., None]) + grs * spot[..., None]
    for _ in range(5):
        r = _ellipse(lon, lat, rng.uniform(-1.4, 1.4), np.radians(-33.5), 0.05, 0.03)
        rgb += 0.12 * _smoothstep((1.1 - r) / 0.3)[..., None]
    for _ in range(8):
        r = _ellipse(lon, lat, rng.uniform(-1.4, 1.4), np.radians(rng.uniform(3.0, 6.5)), 0.09, 0.022)
        rgb *= (1 - 0.25 * _smoothstep((1.1 - r) / 0.5))[..., None]
    for _ in range(3):
        r = _ellipse(lon, lat, rng.uniform(-1.3, 1.3), np.radians(rng.uniform(12.0, 15.0)), 0.05, 0.018)
        rgb = rgb * (1 - 0.5 * _smoothstep((1.1 - r) / 0.4))[..., None]
    return np.clip(rgb, 0, None).astype(np.float32)


def _jupiter(rng: np.random.Generator, h: int, w: int, radius: float) -> np.ndarray:
    """Oblate, limb-darkened banded disc at the canvas centre and a small moon beside it, on black sky."""
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    a, b = radius, radius * (1 - 0.065)
    th = tw = max(64, int(np.pi * radius))
    texture = _jupiter_texture(rng, th, tw)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx - cx) / a, (yy - cy) / b
    r2 = u * u + v * v
    inside = r2 < 1
    sin_lat = np.clip(v, -0.999999, 0.999999)
    lon = np.arcsin(np.clip(u / np.sqrt(1 - sin_lat**2), -1, 1))
    lat = -np.arcsin(sin_lat)
    map_x = ((lon + np.pi / 2) / np.pi * (tw - 1)).astype(np.float32)
    map_y = ((np.pi / 2 - lat) / np.pi * (th - 1)).astype(np.float32)
    rgb = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mu = np.sqrt(np.clip(1 - r2, 0, 1))
    rgb *= (0.12 + 0.88 * mu**0.6)[..., None]
    edge = np.clip((1 - np.sqrt(r2)) * a + 0.5, 0, 1)  # one-pixel anti-aliased limb
    rgb *= np.where(inside | (edge > 0), edge, 0)[..., None]
    # A Galilean moon (about Ganymede's relative size) east of the disc.
    mr = max(2.5, 0.037 * a)
    my, mx = cy + rng.uniform(-0.25, 0.25) * a, cx + 1.7 * a
    d = np.sqrt((yy - my) ** 2 + (xx - mx) ** 2) / mr
    moon = np.clip((1 - d) * mr + 0.5, 0, 1) * (0.55 + 0.35 * np.sqrt(np.clip(1 - d * d, 0, 1)))
    rgb += moon[..., None] * np.array([0.90, 0.86, 0.74], np.float32)
    return rgb


# Saturn's rings: (inner, outer radius in equatorial radii, brightness, opacity), inside out.
_RINGS = [
    (1.24, 1.53, 0.22, 0.15),  # C ring
    (1.53, 1.95, 0.95, 0.90),  # B ring
    (1.95, 2.03, 0.08, 0.05),  # Cassini division
    (2.03, 2.21, 0.70, 0.60),  # A ring inside the Encke gap
    (2.21, 2.22, 0.05, 0.02),  # Encke gap
    (2.22, 2.27, 0.66, 0.55),  # outer A ring
]


def _ring_profile(rng: np.random.Generator, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brightness and opacity of the rings at radius ``rho`` (equatorial radii): the named rings and
    gaps plus fine ringlets (random radial structure, strongest in the B ring)."""
    grid = np.linspace(1.0, 2.4, 2801)
    bright, opacity = np.zeros_like(grid), np.zeros_like(grid)
    for lo, hi, b, o in _RINGS:
        inside = (grid >= lo) & (grid < hi)
        bright[inside], opacity[inside] = b, o
    ringlets = np.convolve(rng.standard_normal(grid.size), np.hanning(41) / np.hanning(41).sum(), "same")
    bright *= 1 + 0.12 * ringlets / ringlets.std()
    rho = np.clip(rho, grid[0], grid[-1])
    return (np.interp(rho, grid, bright).astype(np.float32), np.interp(rho, grid, opacity).astype(np.float32))


def _saturn(rng: np.random.Generator, h: int, w: int, radius: float) -> np.ndarray:
    """Oblate, limb-darkened pale globe with soft belts, and its rings tilted towards us: the rings'
    far half passes behind the globe, the near half in front of it, and the rings cast a shadow on it."""
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    a, b = radius, radius * (1 - 0.098)
    tilt = np.radians(rng.uniform(18.0, 26.0))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx - cx) / a, (yy - cy) / b
    r2 = u * u + v * v
    mu = np.sqrt(np.clip(1 - r2, 0, 1))
    # Belts follow latitude on the tilted globe: the latitude-like coordinate of a visible point.
    lat = np.clip(v * np.cos(tilt) - mu * np.sin(tilt), -1, 1)
    swirl = fractal_noise(rng, h, w, radius / 6, octaves=4, aspect=3.0, persistence=0.55)
    belts = 0.5 + 0.5 * np.cos(2 * np.pi * (lat + 0.01 * swirl) * rng.uniform(3.2, 3.8) + rng.uniform(0, 6.3))
    globe = np.stack([0.92 - 0.10 * belts, 0.84 - 0.14 * belts, 0.62 - 0.16 * belts], -1).astype(np.float32)
    globe *= (1 + 0.03 * swirl)[..., None] * (0.15 + 0.85 * mu**0.7)[..., None]
    edge = np.clip((1 - np.sqrt(r2)) * a + 0.5, 0, 1)
    globe *= edge[..., None]
    # Ring plane: image y = Y sin(tilt) (near half below the centre, towards +y).
    ry = (yy - cy) / np.sin(tilt)
    rho = np.sqrt((xx - cx) ** 2 + ry * ry) / a
    ring_b, ring_o = _ring_profile(rng, rho)
    ring = ring_b[..., None] * np.array([0.90, 0.84, 0.70], np.float32)
    front = (ry > 0) | (edge <= 0)  # the near half, and any ring not behind the globe
    shadow_rho = np.sqrt((xx - cx) ** 2 + ((yy - cy - 0.12 * b) / np.sin(tilt)) ** 2) / a
    _, shadow = _ring_profile(rng, shadow_rho)
    globe *= (1 - 0.85 * shadow * (ry < 0))[..., None]  # the shadow falls on the globe beyond the rings
    front = front[..., None]
    return (globe * (1 - ring_o[..., None] * front) + ring * front).astype(np.float32)


def _crater_height(r: np.ndarray, radius: float) -> np.ndarray:
    """Height profile of a crater of ``radius`` at normalised distance r: bowl, raised rim, ejecta."""
    depth, rim = 0.4 * radius, 0.08 * radius
    bowl = rim - (depth + rim) * (1 - r * r)
    if radius > 12:  # complex crater: flat floor and a central peak
        bowl = np.maximum(bowl, -0.6 * depth) + 0.35 * depth * np.exp(-((r / 0.18) ** 2))
    outside = rim * np.clip(r, 1, None) ** -3 - rim / 27.0
    return np.where(r < 1, bowl, np.where(r < 3, outside, 0.0))


def _moon(rng: np.random.Generator, h: int, w: int, size: int) -> np.ndarray:
    """Cratered lunar surface lit from the left at low sun: maria, craters of many sizes, shadows."""
    mare = _smoothstep((fractal_noise(rng, h, w, size / 2.5, octaves=3) - 0.2) / 0.8)
    height = 1.2 * fractal_noise(rng, h, w, size / 12, octaves=5, persistence=0.55) * (1 - 0.6 * mare)
    r_min, r_max = 1.5, 0.12 * size
    count = int(h * w / 550)
    radii = r_min / np.sqrt(1 - rng.uniform(0, 1 - (r_min / r_max) ** 2, count))  # N(>R) ~ R^-2
    for radius in np.sort(radii)[::-1]:  # big (old) first, small (young) on top
        y0, x0 = rng.uniform(0, h), rng.uniform(0, w)
        if rng.uniform() < 0.75 * mare[min(int(y0), h - 1), min(int(x0), w - 1)]:
            continue  # maria are younger: fewer craters
        reach = int(np.ceil(3 * radius)) + 1
        ys, xs = slice(max(0, int(y0) - reach), min(h, int(y0) + reach)), slice(max(0, int(x0) - reach),
                                                                            min(w, int(x0) + reach))
        gy, gx = np.mgrid[ys, xs].astype(np.float32)
        r = np.sqrt((gy - y0) ** 2 + (gx - x0) ** 2) / radius
        height[ys, xs] += _crater_height(r, radius)
    albedo = 0.62 - 0.30 * mare + 0.04 * fractal_noise(rng, h, w, size / 20, octaves=4)
    albedo *= 1 + 0.05 * fractal_noise(rng, h, w, 3.0, octaves=2)
    gy, gx = np.gradient(height.astype(np.float32))
    elevation = np.radians(18.0)
    lx, lz = -np.cos(elevation), np.sin(elevation)  # light from the left (low x)
    shade = np.clip((-gx * lx + lz) / np.sqrt(1 + gx * gx + gy * gy) / lz, 0, 3.0)
    horizon = np.full(h, -np.inf, dtype=np.float32)
    slope = np.tan(elevation)
    lit = np.empty((h, w), dtype=np.float32)
    for x in range(w):  # cast shadows: a point is dark if terrain to its left rises above the sun's ray
        column = height[:, x].astype(np.float32)
        horizon = np.maximum(horizon - slope, column)
        lit[:, x] = np.clip(1.0 - (horizon - column) / 0.3, 0.0, 1.0)
    grey = np.clip(albedo * shade * (0.04 + 0.96 * lit) * 0.85, 0, None)
    return grey[..., None] * np.array([1.0, 0.98, 0.94], np.float32)


def _sun(rng: np.random.Generator, h: int, w: int, size: int) -> np.ndarray:
    """Solar granulation (Worley cells with dark lanes) over the whole canvas and one sunspot."""
    cell = max(4.0, 0.022 * size)
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    points = (np.stack(np.mgrid[0:gh, 0:gw], -1) - 1 + rng.uniform(0.1, 0.9, (gh, gw, 2))) * cell
    brightness = rng.normal(1.0, 0.07, (gh, gw)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    iy, ix = (yy // cell).astype(np.int32) + 1, (xx // cell).astype(np.int32) + 1
    f1 = np.full((h, w), np.inf, np.float32)
    f2 = np.full((h, w), np.inf, np.float32)
    own = np.ones((h, w), np.float32)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            jy, jx = np.clip(iy + oy, 0, gh - 1), np.clip(ix + ox, 0, gw - 1)
            p = points[jy, jx]
            d = np.sqrt((yy - p[..., 0]) ** 2 + (xx - p[..., 1]) ** 2).astype(np.float32)
            nearer = d < f1
            f2 = np.where(nearer, f1, np.minimum(f2, d))
            own = np.where(nearer, brightness[jy, jx], own)
            f1 = np.where(nearer, d, f1)
    lane = _smoothstep((f2 - f1) / (0.45 * cell)) ** 0.6
    granules = own * (0.62 + 0.38 * lane) * (1 - 0.12 * np.clip(f1 / cell, 0, 1))
    granules *= 1 + 0.03 * fractal_noise(rng, h, w, 8 * cell, octaves=2)
    granules *= 1 + 0.02 * fractal_noise(rng, h, w, 1.5, octaves=1)
    # A sunspot: irregular dark umbra inside a filamentary penumbra.
    sy, sx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    ru = 0.035 * size
    dist = np.sqrt((yy - sy) ** 2 + (xx - sx) ** 2)
    angle = np.arctan2(yy - sy, xx - sx)
    wobble = 1 + 0.12 * np.sin(3 * angle + rng.uniform(0, 6.3)) + 0.06 * np.sin(7 * angle + rng.uniform(0, 6.3))
    rr = dist / (ru * wobble)
    filaments = 0.5 + 0.5 * np.sin(angle * 70 + 2.0 * fractal_noise(rng, h, w, ru, octaves=2))
    penumbra = (0.50 + 0.18 * filaments) * (0.9 + 0.1 * np.clip(rr - 1, 0, 1.2))
    out = _smoothstep((rr - 2.3) / 0.25)
    inner = _smoothstep((rr - 1.0) / 0.15)
    spot = 0.14 * (1 - inner) + penumbra * inner
    intensity = granules * out + spot * (1 - out)
    return (intensity[..., None] * np.array([1.0, 0.62, 0.28], np.float32)).astype(np.float32)
