"""``simulate``: a realistic lucky-imaging recording with a known truth, rendered frame by frame."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

import numpy as np

from luckystack.simulate.conditions import LAYOUTS, SimOptions, draw_conditions
from luckystack.simulate.render import FrameRenderer
from luckystack.simulate.scenes import LUMINANCE, PLANETS, SCENES, render_scene
from luckystack.simulate.truth import Truth

BIT_DEPTHS = range(1, 17)


class Simulation:
    """A simulated recording: its truth (``.truth``, see :mod:`luckystack.simulate.truth`) and its frames,
    rendered on demand (``frame(i)``, ``iter_frames()``), so no more than one frame is held at a time."""

    def __init__(self, scene: str, frames: int, width: int, height: int, bit_depth: int, layout: str,
                 seed: int, options: SimOptions):
        self.scene, self.width, self.height = scene, width, height
        self.bit_depth, self.layout, self.seed, self.options = bit_depth, layout, seed, options
        rng = np.random.default_rng([seed, 0x5CE4E])
        cond = draw_conditions(rng, frames, height, width, options, planet=scene in PLANETS)
        usable = ~cond.partial
        reach = np.abs(cond.shifts[usable]).max() if usable.any() else 0.0
        self.margin = int(np.ceil(reach + 4 * options.local_px + 3 * min(cond.blur.max(), 8.0) + 4))
        canvas = render_scene(scene, height, width, self.margin, np.random.default_rng([seed, 0x5CE7E]),
                              planet_diameter=options.planet_diameter, optics_px=options.optics_px)
        sky = options.sky if scene in PLANETS else 0.0
        canvas = canvas * np.float32(options.exposure) + np.float32(sky)
        if layout == "mono":
            canvas = (canvas @ LUMINANCE)[..., None]
        m = self.margin
        image = np.ascontiguousarray(canvas[m:m + height, m:m + width])
        channels = canvas.shape[2]
        dispersion = np.zeros((channels, 2))
        if channels == 3:
            angle = np.radians(options.dispersion_angle)
            direction = options.dispersion_px * np.array([np.cos(angle), np.sin(angle)])
            dispersion[0], dispersion[2] = direction, -direction
        timestamps = options.start_unix + np.arange(frames) / options.fps
        params = {"scene": scene, "frames": frames, "width": width, "height": height, "bit_depth": bit_depth,
                  "layout": layout, "seed": seed, "options": asdict(options), "margin": self.margin}
        self.truth = Truth.from_conditions(image, cond, dispersion, timestamps, options.local_cell,
                                           options.blur_cell, 2**bit_depth - 1, params)
        self.renderer = FrameRenderer(canvas, m, self.truth, options, layout, bit_depth, seed,
                                      border_value=float(sky) if scene in PLANETS else None)

    @property
    def frame_count(self) -> int:
        return self.truth.frame_count

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.renderer.dtype)

    def render(self, i: int) -> np.ndarray:
        """Frame i on the 0..1 scale before brightness, noise and quantisation."""
        return self.renderer.render(self._index(i))

    def frame(self, i: int) -> np.ndarray:
        """Frame i as recorded: (H, W) mono or Bayer mosaic, (H, W, 3) RGB; uint8 or uint16."""
        return self.renderer.frame(self._index(i))

    def iter_frames(self) -> Iterator[np.ndarray]:
        """All frames in order, one at a time."""
        for i in range(self.frame_count):
            yield self.renderer.frame(i)

    def _index(self, i: int) -> int:
        if not 0 <= i < self.frame_count:
            raise IndexError(f"frame {i} out of range 0..{self.frame_count - 1}")
        return int(i)


def simulate(scene: str = "jupiter", frames: int = 300, width: int = 640, height: int = 480,
             bit_depth: int = 8, layout: str = "mono", seed: int = 0, **options) -> Simulation:
    """A simulated recording of ``scene`` (jupiter, saturn, moon or sun); ``options`` are
    :class:`~luckystack.simulate.conditions.SimOptions` fields. Deterministic in all arguments.

    ``bit_depth`` is the data depth: 1..8 gives 8-bit samples, 9..16 16-bit samples, LSB-aligned (a 12-bit
    recording has values 0..4095 in a 16-bit container). ``layout`` is mono, RGB or a Bayer pattern
    (RGGB, GRBG, GBRG, BGGR) mosaicking an RGB scene.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; choose one of {', '.join(SCENES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be 1..16, got {bit_depth}")
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"frame size must be 16..8192 px per side, got {width}x{height}")
    if layout not in ("mono", "RGB") and (width % 2 or height % 2):
        raise ValueError("a Bayer recording needs an even width and height")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    return Simulation(scene, int(frames), int(width), int(height), int(bit_depth), layout, int(seed),
                      SimOptions.from_kwargs(options))
