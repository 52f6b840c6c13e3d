"""Make docs/demo.png from a finished demo: python docs/make_demo_figure.py DEMO_DIR docs/demo.png

DEMO_DIR is where `luckystack demo` ran (it holds demo/jupiter.ser and out/jupiter/). The picture shows a
simulated frame of median seeing, the truth and the P25 stack, registered on the truth, one stretch.
"""
import sys
from pathlib import Path
import cv2, numpy as np, tifffile
from luckystack.simulate import load_truth
from luckystack.simulate.metrics import register
from luckystack.report.contact import contact_sheet, write_png
demo = Path(sys.argv[1]); out = Path(sys.argv[2])
ser = demo / "demo" / "jupiter.ser"
truth = load_truth(ser)
p = truth.params
frames = np.memmap(ser, np.uint8, "r", offset=178, shape=(truth.frame_count, p["height"], p["width"]))
median = int(np.argsort(truth.seeing)[truth.frame_count // 2])
frame = frames[median].astype(np.float32)[..., None] / 255
stack = tifffile.imread(next((demo / "out" / "jupiter" / "P25").glob("*.tif"))).astype(np.float32)[..., None] / 65535
reg_s, tru, _, area = register(stack, truth.image)
reg_f, _, _, _ = register(frame, truth.image)
y0, x0, h, w = area
def crop(img):
    g = img[..., 0]; ys, xs = np.nonzero(tru[..., 0] > 0.1)
    cy, cx = int(ys.mean()), int(xs.mean()); r = int(0.62 * (ys.max() - ys.min()))
    return img[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r]
sheet = contact_sheet([crop(reg_f), crop(tru), crop(reg_s)], ["one frame (median seeing)", "truth", "luckystack P25"],
                      columns=3, tile=300)
write_png(out, sheet)
