#!/usr/bin/env python3
"""Generates small ONNX test models that use MMDeploy's and mmcv's ONNX Runtime custom ops, with
inputs and expected outputs from numpy reference implementations written here from the ops'
documented semantics (an independent reference: rdeploy implements the ops in Rust and compares
against these files; nothing here runs an MMDeploy or mmcv kernel).

Layout, per case (the ONNX backend-test layout):
  OUT/<case>/model.onnx                       opset '' 13 + the custom domain at version 1
  OUT/<case>/test_data_set_0/input_K.pb       onnx TensorProto, named as the graph input K
  OUT/<case>/test_data_set_0/output_K.pb      expected output K
  OUT/<case>/meta.json                        domain, op_type, attributes, rtol, atol,
                                              standard_equivalent, notes, inputs, outputs
  OUT/index.json                              every case with its domain and op type
References compute in float64 and store float32; tolerances are in each meta.json. Inputs are
chosen (and asserted, see the `guard_*` helpers) to keep every discrete decision -- NMS IoU versus
threshold, nearest rounding, adaptive sample counts, the RoIAlign out-of-map cut at -1 and H --
far from its boundary, so a float32 kernel must reach the same decision.

Usage:
  python scripts/make_custom_op_models.py [OUT_DIR]     (default tests/data/generated/custom-ops)
  python scripts/make_custom_op_models.py --self-check  cross-checks the references against
      onnxruntime's standard ops (GridSample-16, RoiAlign-16, Conv, DeformConv-19,
      NonMaxSuppression) and the onnx package's reference DeformConv; exit code 1 on a mismatch.

Sources read for the semantics (op names, domains, attribute names/types, input order, output
layout, coordinate conventions); no code was copied:
- open-mmlab/mmdeploy @ 3f8604bd72e8e15d06b2e0552fe2fdb8f8de33c4 (main, 2024-09-30):
  docs/en/06-custom-ops/onnxruntime.md;
  csrc/mmdeploy/backend_ops/onnxruntime/onnxruntime_register.cpp (domain "mmdeploy"),
  .../grid_sample/grid_sample.{h,cpp}, .../modulated_deform_conv/modulated_deform_conv.{h,cpp}
  (also registered in domain "mmcv"), .../nms_rotated/nms_rotated.{h,cpp},
  .../roi_align_rotated/roi_align_rotated.{h,cpp}, .../nms_match/nms_match.{h,cpp};
  csrc/mmdeploy/backend_ops/common/modulated_deform_conv/modulated_deform_conv_cpu.h;
  mmdeploy/pytorch/symbolics/grid_sampler.py; mmdeploy/mmcv/ops/{modulated_deform_conv,
  nms_rotated, nms_match, roi_align, roi_align_rotated, point_sample}.py.
- open-mmlab/mmcv @ 1d8f9285674f2b1f9f2d7758d3f945ebb74fcf82 (branch 1.x; the ONNX Runtime ops
  were removed from mmcv 2.x): docs/en/deployment/onnxruntime_custom_ops.md;
  mmcv/ops/csrc/onnxruntime/cpu/{onnxruntime_register, roi_align, nms, soft_nms, gridSample,
  corner_pool, reduce_ops, modulated_deform_conv, deform_conv}.cpp and the matching .h files;
  mmcv/onnx/symbolic.py (mmcv::grid_sampler, mmcv::cummax, mmcv::cummin);
  mmcv/ops/{nms, roi_align, roi_align_rotated, corner_pool, modulated_deform_conv,
  deform_conv}.py (symbolic functions).
- open-mmlab/mmcv @ a8073c74bf83d62ec36a103f835faa4837fb6585 (main): the PyTorch CPU ops the
  models are trained with, for the semantics the ONNX kernels must keep:
  mmcv/ops/csrc/pytorch/modulated_deform_conv.cpp, mmcv/ops/csrc/pytorch/cpu/{nms,
  roi_align_rotated}.cpp, mmcv/ops/csrc/common/box_iou_rotated_utils.hpp.
- The ONNX operator specs of GridSample-16, RoiAlign-16 and DeformConv-19 (onnx 1.23 package:
  onnx.defs schemas and onnx/reference/ops/op_deform_conv.py).
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "data", "generated", "custom-ops")
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


# --------------------------------------------------------------------------------------------
# grid_sampler (PyTorch grid_sample semantics: grid[..., 0] is x (width), grid[..., 1] is y)
# --------------------------------------------------------------------------------------------

GS_BILINEAR, GS_NEAREST, GS_BICUBIC = 0, 1, 2
GS_ZEROS, GS_BORDER, GS_REFLECTION = 0, 1, 2


def _gs_unnormalize(c, size, align_corners):
    # align_corners=1: -1 and 1 are the centres of the corner pixels; 0: their outer edges.
    return (c + 1) / 2 * (size - 1) if align_corners else ((c + 1) * size - 1) / 2


def _gs_reflect(c, twice_low, twice_high):
    if twice_low == twice_high:
        return 0.0
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = abs(c - low)
    extra = math.fmod(c, span)
    flips = math.floor(c / span)
    return extra + low if flips % 2 == 0 else span - extra + low


def _gs_pad(c, size, padding, align_corners):
    """Maps a pixel coordinate into the input by the padding mode (zeros: unchanged)."""
    if padding == GS_BORDER:
        c = min(size - 1.0, max(c, 0.0))
    elif padding == GS_REFLECTION:
        c = _gs_reflect(c, 0, 2 * (size - 1)) if align_corners else _gs_reflect(c, -1, 2 * size - 1)
        c = min(size - 1.0, max(c, 0.0))
    return c


def _cubic_coeffs(t, a=-0.75):
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample_ref(x, grid, mode, padding, align_corners):
    """x [N,C,H,W], grid [N,Ho,Wo,2] -> [N,C,Ho,Wo]."""
    x = x.astype(np.float64)
    grid = grid.astype(np.float64)
    n_, c_, h_, w_ = x.shape
    _, ho, wo, _ = grid.shape
    out = np.zeros((n_, c_, ho, wo))

    def at(img, yy, xx):  # zero outside the input
        if 0 <= yy < h_ and 0 <= xx < w_:
            return img[:, yy, xx]
        return np.zeros(c_)

    for n in range(n_):
        img = x[n]
        for i in range(ho):
            for j in range(wo):
                gx, gy = grid[n, i, j]
                if mode == GS_BICUBIC:
                    # taps around the unpadded coordinate; padding applies to each tap
                    fx = _gs_unnormalize(gx, w_, align_corners)
                    fy = _gs_unnormalize(gy, h_, align_corners)
                    x0, y0 = math.floor(fx), math.floor(fy)
                    cx, cy = _cubic_coeffs(fx - x0), _cubic_coeffs(fy - y0)

                    def tap(yy, xx):
                        px = _gs_pad(float(xx), w_, padding, align_corners)
                        py = _gs_pad(float(yy), h_, padding, align_corners)
                        return at(img, int(py), int(px))  # truncation, as a C cast

                    v = np.zeros(c_)
                    for a in range(4):
                        row = sum(cx[b] * tap(y0 - 1 + a, x0 - 1 + b) for b in range(4))
                        v += cy[a] * row
                    out[n, :, i, j] = v
                    continue
                fx = _gs_pad(_gs_unnormalize(gx, w_, align_corners), w_, padding, align_corners)
                fy = _gs_pad(_gs_unnormalize(gy, h_, align_corners), h_, padding, align_corners)
                if mode == GS_NEAREST:
                    out[n, :, i, j] = at(img, int(np.rint(fy)), int(np.rint(fx)))  # half to even
                else:
                    x0, y0 = math.floor(fx), math.floor(fy)
                    tx, ty = fx - x0, fy - y0
                    out[n, :, i, j] = ((1 - tx) * (1 - ty) * at(img, y0, x0)
                                       + tx * (1 - ty) * at(img, y0, x0 + 1)
                                       + (1 - tx) * ty * at(img, y0 + 1, x0)
                                       + tx * ty * at(img, y0 + 1, x0 + 1))
    return out.astype(np.float32)


def guard_nearest(grid, h, w, align_corners, padding):
    """Nearest rounding must not sit on a .5 tie (float32 and float64 could round apart)."""
    for gx, gy in grid.reshape(-1, 2).astype(np.float64):
        for g, size in ((gx, w), (gy, h)):
            c = _gs_pad(_gs_unnormalize(g, size, align_corners), size, padding, align_corners)
            frac = c - math.floor(c)
            assert abs(frac - 0.5) > 1e-3, f"grid value {g} rounds on a tie"


# --------------------------------------------------------------------------------------------
# Modulated deformable convolution (DCNv2), mmcv's PyTorch semantics
# --------------------------------------------------------------------------------------------

def _dcn_bilinear(img, y, x):
    """Bilinear sample of one channel; zero outside (-1, H) x (-1, W), missing corners zero."""
    h_, w_ = img.shape
    if y <= -1 or y >= h_ or x <= -1 or x >= w_:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    v = 0.0
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h_ and 0 <= xx < w_:
                v += wy * wx * img[yy, xx]
    return v


def modulated_deform_conv_ref(x, offset, mask, weight, bias, stride, padding, dilation, groups,
                              deform_groups):
    """x [N,C,H,W]; offset [N, dg*2*kh*kw, Ho, Wo] laid out (dg, kh, kw, (dy, dx)); mask
    [N, dg*kh*kw, Ho, Wo] laid out (dg, kh, kw) or None (all ones: plain DCNv1); weight
    [Co, C/groups, kh, kw]; bias [Co] or None. Input channel c uses deformable group
    c // (C / deform_groups) -- the absolute channel index, as mmcv's PyTorch op and ONNX
    DeformConv do."""
    x = x.astype(np.float64)
    offset = offset.astype(np.float64)
    weight = weight.astype(np.float64)
    n_, c_, h_, w_ = x.shape
    co, cg, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    ho = (h_ + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    wo = (w_ + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    assert offset.shape == (n_, deform_groups * 2 * kh * kw, ho, wo), offset.shape
    assert cg * groups == c_ and co % groups == 0 and c_ % deform_groups == 0
    c_per_dg = c_ // deform_groups
    cols = np.zeros((n_, c_, kh, kw, ho, wo))
    for n in range(n_):
        for c in range(c_):
            g = c // c_per_dg
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for oh in range(ho):
                        for ow in range(wo):
                            dy = offset[n, g * 2 * kh * kw + 2 * k, oh, ow]
                            dx = offset[n, g * 2 * kh * kw + 2 * k + 1, oh, ow]
                            m = 1.0 if mask is None else float(mask[n, g * kh * kw + k, oh, ow])
                            y = oh * sh - ph + i * dh + dy
                            xx = ow * sw - pw + j * dw + dx
                            cols[n, c, i, j, oh, ow] = m * _dcn_bilinear(x[n, c], y, xx)
    out = np.zeros((n_, co, ho, wo))
    cog = co // groups
    for g in range(groups):
        w_g = weight[g * cog:(g + 1) * cog]
        out[:, g * cog:(g + 1) * cog] = np.einsum("oijk,nijkhw->nohw", w_g,
                                                  cols[:, g * cg:(g + 1) * cg])
    if bias is not None:
        out += bias.astype(np.float64).reshape(1, -1, 1, 1)
    return out.astype(np.float32)


def conv2d_ref(x, weight, bias, pad):
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n_, _, h_, w_ = x.shape
    co, ci, kh, kw = weight.shape
    ho, wo = h_ - kh + 1, w_ - kw + 1
    out = np.zeros((n_, co, ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("oc,nchw->nohw", weight[:, :, i, j].astype(np.float64),
                             x[:, :, i:i + ho, j:j + wo])
    return out + bias.astype(np.float64).reshape(1, -1, 1, 1)


# --------------------------------------------------------------------------------------------
# Rotated boxes: corners, IoU by convex polygon clipping
# --------------------------------------------------------------------------------------------

def rbox_corners(cx, cy, w, h, theta):
    """Corners of (cx, cy, w, h, theta): the local corners rotated by the matrix
    [[cos, -sin], [sin, cos]] (theta in radians; with y pointing down in an image this turns
    clockwise on screen), as mmcv/mmdeploy's get_rotated_vertices."""
    c, s = math.cos(theta), math.sin(theta)
    local = ((-w / 2, h / 2), (-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2))
    return [(cx + c * px - s * py, cy + s * px + c * py) for px, py in local]


def _signed_area(poly):
    return 0.5 * sum(poly[i - 1][0] * poly[i][1] - poly[i][0] * poly[i - 1][1]
                     for i in range(len(poly)))


def _ccw(poly):
    return poly if _signed_area(poly) >= 0 else poly[::-1]


def _side(a, b, p):  # > 0 when p is left of a->b
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def convex_clip(subject, clip):
    """Sutherland-Hodgman: the part of convex polygon `subject` inside convex polygon `clip`
    (both counter-clockwise)."""
    out = list(subject)
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        pts, out = out, []
        if not pts:
            break
        for k in range(len(pts)):
            p, q = pts[k - 1], pts[k]
            sp, sq = _side(a, b, p), _side(a, b, q)
            if sq >= 0:
                if sp < 0:
                    t = sp / (sp - sq)
                    out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
                out.append(q)
            elif sp >= 0:
                t = sp / (sp - sq)
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def rotated_iou(b1, b2):
    p1 = _ccw(rbox_corners(*b1))
    p2 = _ccw(rbox_corners(*b2))
    inter = convex_clip(p1, p2)
    ia = abs(_signed_area(inter)) if len(inter) >= 3 else 0.0
    union = b1[2] * b1[3] + b2[2] * b2[3] - ia
    return ia / union


def rotated_iou_raster(b1, b2, step=0.01):
    """Independent check of rotated_iou: counts grid points inside both boxes."""
    pts = np.array(rbox_corners(*b1) + rbox_corners(*b2))
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    xs, ys = np.meshgrid(np.arange(x0, x1, step), np.arange(y0, y1, step))

    def inside(b):
        cx, cy, w, h, t = b
        dx, dy = xs - cx, ys - cy
        lx = math.cos(t) * dx + math.sin(t) * dy  # rotate back by -theta
        ly = -math.sin(t) * dx + math.cos(t) * dy
        return (np.abs(lx) <= w / 2) & (np.abs(ly) <= h / 2)

    a, b = inside(b1), inside(b2)
    return (a & b).sum() / (a | b).sum()


def _check_ties(scores, what):
    flat = np.sort(np.asarray(scores, np.float64).ravel())
    assert np.all(np.diff(flat) > 1e-4), f"{what}: scores too close to order robustly"


def guard_iou(iou, thr, what, margin=0.05):
    assert abs(iou - thr) > margin, f"{what}: IoU {iou:.4f} too close to threshold {thr}"


def nms_rotated_ref(boxes, scores, iou_threshold, score_threshold):
    """boxes [B,N,5] (cx,cy,w,h,theta rad), scores [B,C,N] -> int64 [K,3] (batch, class, box),
    per batch then per class, boxes in descending score. A box is suppressed by a kept,
    higher-scored box when IoU > iou_threshold; kept boxes are output when score >
    score_threshold."""
    b_, c_, n_ = scores.shape
    rows = []
    for b in range(b_):
        bx = boxes[b].astype(np.float64)
        for i in range(n_):
            for j in range(i + 1, n_):
                guard_iou(rotated_iou(bx[i], bx[j]), iou_threshold, f"NMSRotated b{b} {i}-{j}")
        for c in range(c_):
            sc = scores[b, c].astype(np.float64)
            _check_ties(np.append(sc, score_threshold), "NMSRotated")
            order = list(np.argsort(-sc, kind="stable"))
            suppressed = [False] * n_
            for a in range(n_):
                if suppressed[a]:
                    continue
                for z in range(a + 1, n_):
                    if suppressed[z]:
                        continue
                    if rotated_iou(bx[order[a]], bx[order[z]]) > iou_threshold:
                        suppressed[z] = True
            rows += [(b, c, order[a]) for a in range(n_)
                     if not suppressed[a] and sc[order[a]] > score_threshold]
    return np.array(rows, np.int64).reshape(-1, 3)


# --------------------------------------------------------------------------------------------
# Axis-aligned NMS family (mmdeploy::NMSMatch, mmcv::NonMaxSuppression, SoftNonMaxSuppression)
# --------------------------------------------------------------------------------------------

def box_iou(a, b, offset=0.0):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = iw * ih
    area_a = (a[2] - a[0] + offset) * (a[3] - a[1] + offset)
    area_b = (b[2] - b[0] + offset) * (b[3] - b[1] + offset)
    return inter / (area_a + area_b - inter)


def nms_match_ref(boxes, scores, iou_threshold, score_threshold):
    """boxes [B,N,4] (x1,y1,x2,y2), scores [B,C,N] -> int64 [K,4] (batch, class, kept box,
    suppressed box). In descending score order each not-yet-suppressed box suppresses the later
    ones with IoU >= iou_threshold; a keeper with score > score_threshold and at least one match
    emits one row per match (keepers in score order, matches in score order). Keepers below
    score_threshold still suppress, but emit nothing."""
    b_, c_, n_ = scores.shape
    rows = []
    for b in range(b_):
        bx = boxes[b].astype(np.float64)
        for i in range(n_):
            for j in range(i + 1, n_):
                guard_iou(box_iou(bx[i], bx[j]), iou_threshold, f"NMSMatch b{b} {i}-{j}")
        for c in range(c_):
            sc = scores[b, c].astype(np.float64)
            _check_ties(np.append(sc, score_threshold), "NMSMatch")
            order = list(np.argsort(-sc, kind="stable"))
            suppressed = set()
            for a, i in enumerate(order):
                if i in suppressed:
                    continue
                matched = []
                for j in order[a + 1:]:
                    if j not in suppressed and box_iou(bx[i], bx[j]) >= iou_threshold:
                        suppressed.add(j)
                        matched.append(j)
                if sc[i] > score_threshold:
                    rows += [(b, c, i, j) for j in matched]
    return np.array(rows, np.int64).reshape(-1, 4)


def nms_ref(boxes, scores, iou_threshold, offset):
    """mmcv NMS: boxes [N,4], scores [N] -> int64 [K] kept indices in descending score;
    suppression when IoU > iou_threshold, widths are x2 - x1 + offset."""
    bx = boxes.astype(np.float64)
    n_ = len(bx)
    _check_ties(scores, "NMS")
    for i in range(n_):
        for j in range(i + 1, n_):
            guard_iou(box_iou(bx[i], bx[j], offset), iou_threshold, f"NMS {i}-{j}")
    order = list(np.argsort(-scores.astype(np.float64), kind="stable"))
    keep, suppressed = [], set()
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            if box_iou(bx[i], bx[j], offset) > iou_threshold:
                suppressed.add(j)
    return np.array(keep, np.int64)


def soft_nms_ref(boxes, scores, iou_threshold, sigma, min_score, method, offset):
    """mmcv SoftNMS: repeatedly take the highest current score, then rescale every remaining
    box's score by its IoU with it (method 0 naive: 0 if IoU >= thr; 1 linear: 1 - IoU if
    IoU >= thr; 2 gaussian: exp(-IoU^2 / sigma)) and drop the ones now below min_score.
    Returns dets [K,5] (x1,y1,x2,y2, score when taken) and int64 indices [K], in taking order."""
    bx = boxes.astype(np.float64)
    sc = scores.astype(np.float64).copy()
    remaining = list(range(len(bx)))
    dets, inds = [], []
    while remaining:
        cur = sorted(remaining, key=lambda k: -sc[k])
        if len(cur) > 1:
            assert sc[cur[0]] - sc[cur[1]] > 1e-4, "SoftNMS: a tie for the top score"
        i = cur[0]
        remaining.remove(i)
        dets.append(list(bx[i]) + [sc[i]])
        inds.append(i)
        for j in remaining:
            ovr = box_iou(bx[i], bx[j], offset)
            if method in (0, 1):
                guard_iou(ovr, iou_threshold, f"SoftNMS {i}-{j}", margin=0.02)
            if method == 0:
                weight = 0.0 if ovr >= iou_threshold else 1.0
            elif method == 1:
                weight = 1.0 - ovr if ovr >= iou_threshold else 1.0
            else:
                weight = math.exp(-(ovr * ovr) / sigma)
            sc[j] *= weight
            assert abs(sc[j] - min_score) > 1e-4, "SoftNMS: a score lands on min_score"
        remaining = [j for j in remaining if sc[j] >= min_score]
    return np.array(dets, np.float32).reshape(-1, 5), np.array(inds, np.int64)


# --------------------------------------------------------------------------------------------
# RoIAlign (mmcv::MMCVRoiAlign) and RoIAlignRotated (mmdeploy::MMCVRoIAlignRotated)
# --------------------------------------------------------------------------------------------

def _roi_bilinear(img, y, x):
    """Caffe2/Detectron RoIAlign sampling: zero when y < -1 or y > H (x likewise), otherwise the
    point is clamped into [0, H-1] x [0, W-1] and interpolated."""
    h_, w_ = img.shape
    if y < -1.0 or y > h_ or x < -1.0 or x > w_:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h_ - 1:
        y0 = y1 = h_ - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w_ - 1:
        x0 = x1 = w_ - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1]
            + ly * (1 - lx) * img[y1, x0] + ly * lx * img[y1, x1])


def _guard_sample(y, x, h, w):
    for v, size in ((y, h), (x, w)):
        assert abs(v + 1) > 1e-3 and abs(v - size) > 1e-3, f"sample {v} on the out-of-map cut"


def _grid_count(sampling_ratio, extent, pooled):
    if sampling_ratio > 0:
        return sampling_ratio
    r = extent / pooled
    assert abs(r - round(r)) > 1e-3, f"adaptive sample count: {extent}/{pooled} on a boundary"
    return int(math.ceil(r))


def roi_align_ref(feat, rois, output_height, output_width, spatial_scale, sampling_ratio, mode,
                  aligned):
    """feat [N,C,H,W], rois [K,5] (batch, x1, y1, x2, y2) -> [K,C,oh,ow]. aligned=1 shifts the
    scaled box by -0.5 px (pixel centres at integer coordinates); aligned=0 keeps the legacy box
    and clamps its size to at least 1. Each bin takes grid_h x grid_w samples at the sub-cell
    centres (sampling_ratio, or ceil(bin size) when 0), averaged ('avg') or maxed ('max')."""
    feat = feat.astype(np.float64)
    _, c_, h_, w_ = feat.shape
    out = np.zeros((len(rois), c_, output_height, output_width))
    for r, roi in enumerate(rois.astype(np.float64)):
        off = 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * spatial_scale - off for v in roi[1:])
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / output_height, rw / output_width
        gh = _grid_count(sampling_ratio, rh, output_height)
        gw = _grid_count(sampling_ratio, rw, output_width)
        img = feat[int(roi[0])]
        for ph in range(output_height):
            for pw in range(output_width):
                vals = []
                for iy in range(gh):
                    y = y1 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        x = x1 + pw * bw + (ix + 0.5) * bw / gw
                        _guard_sample(y, x, h_, w_)
                        vals.append([_roi_bilinear(img[c], y, x) for c in range(c_)])
                vals = np.array(vals)
                if mode == "max":
                    out[r, :, ph, pw] = vals.max(0)
                else:
                    out[r, :, ph, pw] = vals.sum(0) / max(gh * gw, 1)
    return out.astype(np.float32)


def roi_align_rotated_ref(feat, rois, output_height, output_width, spatial_scale, sampling_ratio,
                          aligned, clockwise):
    """feat [N,C,H,W], rois [K,6] (batch, cx, cy, w, h, theta rad) -> [K,C,oh,ow], average
    pooling. A bin sample at (yy, xx) relative to the box centre maps to
    y = yy cos t - xx sin t + cy, x = yy sin t + xx cos t + cx, with t = -theta when clockwise=1.
    aligned=1 shifts the scaled centre by -0.5; aligned=0 clamps w, h to at least 1."""
    feat = feat.astype(np.float64)
    _, c_, h_, w_ = feat.shape
    out = np.zeros((len(rois), c_, output_height, output_width))
    for r, roi in enumerate(rois.astype(np.float64)):
        off = 0.5 if aligned else 0.0
        cx, cy = roi[1] * spatial_scale - off, roi[2] * spatial_scale - off
        rw, rh = roi[3] * spatial_scale, roi[4] * spatial_scale
        t = -roi[5] if clockwise else roi[5]
        ct, st = math.cos(t), math.sin(t)
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / output_height, rw / output_width
        gh = _grid_count(sampling_ratio, rh, output_height)
        gw = _grid_count(sampling_ratio, rw, output_width)
        img = feat[int(roi[0])]
        for ph in range(output_height):
            for pw in range(output_width):
                acc = np.zeros(c_)
                for iy in range(gh):
                    yy = -rh / 2 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = -rw / 2 + pw * bw + (ix + 0.5) * bw / gw
                        y = yy * ct - xx * st + cy
                        x = yy * st + xx * ct + cx
                        _guard_sample(y, x, h_, w_)
                        acc += [_roi_bilinear(img[c], y, x) for c in range(c_)]
                out[r, :, ph, pw] = acc / max(gh * gw, 1)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# CornerPool, cummax, cummin
# --------------------------------------------------------------------------------------------

def corner_pool_ref(x, mode):
    """mode 0 top: max over rows h..H-1; 1 bottom: rows 0..h; 2 left: cols w..W-1;
    3 right: cols 0..w."""
    axis = 2 if mode in (0, 1) else 3
    if mode in (0, 2):  # from the far end towards index 0
        return np.flip(np.maximum.accumulate(np.flip(x, axis), axis=axis), axis).copy()
    return np.maximum.accumulate(x, axis=axis)


def cum_ref(x, dim, is_max):
    """torch.cummax / cummin along dim: values and the index of the last element equal to the
    running extreme (ties move the index forward: >= for max, <= for min)."""
    x = np.moveaxis(x, dim, -1)
    vals = np.empty_like(x)
    idx = np.empty(x.shape, np.int64)
    for pos in np.ndindex(x.shape[:-1]):
        best, bi = x[pos][0], 0
        for k, v in enumerate(x[pos]):
            if (v >= best) if is_max else (v <= best):
                best, bi = v, k
            vals[pos + (k,)] = best
            idx[pos + (k,)] = bi
    return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

def _rng(seed):
    return np.random.default_rng(seed)


def _f32(a):
    return np.asarray(a, np.float32)


def _uniform(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def case(name, domain, op_type, attrs, inputs, outputs, *, rtol, atol, standard=None, notes="",
         inits=(), out_shapes=None, nodes=None, value_info=()):
    """A case spec: inputs/outputs are [(name, array)], graph inputs in that order."""
    return dict(name=name, domain=domain, op_type=op_type, attrs=attrs, inputs=inputs,
                outputs=outputs, rtol=rtol, atol=atol, standard=standard, notes=notes,
                inits=list(inits), out_shapes=out_shapes or {}, nodes=nodes,
                value_info=list(value_info))


GS_MODES = {0: "bilinear", 1: "nearest", 2: "bicubic"}
GS_PADS = {0: "zeros", 1: "border", 2: "reflection"}

GRID_SAMPLER_NOTES = (
    "PyTorch grid_sample semantics. input [N,C,H,W], grid [N,Ho,Wo,2] with grid[...,0] = x "
    "(width) and grid[...,1] = y (height), normalised to [-1, 1]; output [N,C,Ho,Wo]. "
    "Attributes are all int and all required by the kernel (no defaults): interpolation_mode "
    "0 bilinear / 1 nearest / 2 bicubic (bicubic is implemented by the kernel, cubic "
    "convolution A=-0.75, though the docs' table lists only 0 and 1), padding_mode 0 zeros / "
    "1 border / 2 reflection, align_corners 0/1. Nearest rounds half to even (nearbyint). "
    "Bicubic takes the 4x4 taps around the unpadded coordinate and applies the padding mode to "
    "each tap. Equivalent to GridSample-16 with mode/padding_mode as strings "
    "(GridSample-20+ spells the modes linear/nearest/cubic).")


def grid_sampler_cases():
    specs = [
        # name, domain, interpolation, padding, align_corners, seed
        ("grid_sampler_bilinear_zeros", "mmdeploy", 0, 0, 0, 101),
        ("grid_sampler_nearest_border", "mmdeploy", 1, 1, 0, 102),
        ("grid_sampler_bilinear_reflection_ac1", "mmdeploy", 0, 2, 1, 103),
        ("grid_sampler_bicubic_zeros", "mmdeploy", 2, 0, 0, 104),
        ("grid_sampler_bicubic_border_ac1", "mmdeploy", 2, 1, 1, 105),
        ("mmcv_grid_sampler_bilinear_border_ac1", "mmcv", 0, 1, 1, 106),
    ]
    out = []
    for name, domain, mode, pad, ac, seed in specs:
        rng = _rng(seed)
        x = _uniform(rng, (2, 3, 5, 6))
        grid = _uniform(rng, (2, 4, 5, 2), -1.25, 1.25)  # some points fall outside
        if mode == GS_NEAREST:
            guard_nearest(grid, 5, 6, ac, pad)
        y = grid_sample_ref(x, grid, mode, pad, ac)
        attrs = dict(interpolation_mode=mode, padding_mode=pad, align_corners=ac)
        where = ("mmcv 1.x exports torch's grid_sampler as mmcv::grid_sampler "
                 "(mmcv/onnx/symbolic.py; mmdeploy does too for PPLNN); same kernel as "
                 "mmdeploy's. " if domain == "mmcv" else "")
        out.append(case(
            name, domain, "grid_sampler", attrs, [("input", x), ("grid", grid)],
            [("output", y)], rtol=1e-4, atol=1e-5, standard="GridSample-16",
            notes=where + GRID_SAMPLER_NOTES + f" This case: GridSample-16 mode="
                  f"'{GS_MODES[mode]}' padding_mode='{GS_PADS[pad]}' align_corners={ac}."))
    return out


MDCN_NOTES = (
    "Modulated deformable convolution (DCNv2). Inputs in order: input [N,C,H,W], offset "
    "[N, deform_groups*2*kH*kW, Ho, Wo], mask [N, deform_groups*kH*kW, Ho, Wo], weight "
    "[Co, C/groups, kH, kW], bias [Co] (optional: the kernel declares input 4 optional). "
    "Offset channel layout is (deform_group, kh, kw, (dy, dx)): channel g*2*kH*kW + "
    "2*(kh*kW+kw) is the y (height) offset and +1 the x offset; mask channel g*kH*kW + "
    "kh*kW+kw. Sample point: y = oh*stride_h - pad_h + kh*dil_h + dy (x alike), bilinear, zero "
    "outside (-1, H) x (-1, W). Output = conv of mask * sample with weight, + bias. "
    "Attributes: stride, padding, dilation (int lists [h, w], symmetric padding), groups (int), "
    "deform_groups (int) -- all read as required by the kernels; the docs' table names the "
    "last one deformable_groups, but the symbolic (deform_groups_i) and the kernels use "
    "deform_groups. Input channel c belongs to deformable group c // (C/deform_groups) (absolute "
    "channel index), as mmcv's PyTorch op and ONNX DeformConv. "
    "Standard equivalent: DeformConv-19(X=input, W=weight, offset=offset, B=bias, mask=mask) -- "
    "note the input order differs (W second, mask last) -- with strides=stride, "
    "pads=[pad_h, pad_w, pad_h, pad_w], dilations=dilation, group=groups, "
    "offset_group=deform_groups, kernel_shape=weight.shape[2:]; the offset layout is the same.")

MDCN_GROUPS_CAVEAT = (
    " CAVEAT: with groups > 1 AND deform_groups > 1, the ONNX Runtime CPU kernels of mmdeploy "
    "(deformable_conv2d_ref_fp32 in onnxruntime/modulated_deform_conv) and mmcv 1.x run the "
    "im2col per conv group with the group's C/groups channels and an unshifted offset pointer, "
    "so they assign deformable groups by the channel index within the conv group; that differs "
    "from mmcv's PyTorch op (im2col over all channels) and ONNX DeformConv. This case follows "
    "the PyTorch/ONNX semantics (the model's training semantics), which onnxruntime's "
    "DeformConv-19 reproduces (see --self-check).")


def mdcn_cases():
    out = []
    specs = [
        # name, domain, N, C, H, W, Co, k, stride, pad, dil, groups, dg, bias, seed
        ("modulated_deform_conv_basic", "mmdeploy", 1, 3, 6, 6, 4, 3, 1, 1, 1, 1, 1, True, 201),
        ("modulated_deform_conv_g2_dg2_s2", "mmdeploy", 2, 4, 7, 7, 4, 3, 2, 1, 1, 2, 2, True, 202),
        ("modulated_deform_conv_dg2_dil2_nobias", "mmdeploy", 1, 4, 7, 6, 2, 3, 1, 2, 2, 1, 2,
         False, 203),
        ("mmcv_modulated_deform_conv_basic", "mmcv", 1, 2, 5, 5, 3, 3, 1, 1, 1, 1, 1, True, 204),
    ]
    for name, domain, n, c, h, w, co, k, s, p, d, g, dg, with_bias, seed in specs:
        rng = _rng(seed)
        ho = (h + 2 * p - (d * (k - 1) + 1)) // s + 1
        wo = (w + 2 * p - (d * (k - 1) + 1)) // s + 1
        x = _uniform(rng, (n, c, h, w))
        offset = _uniform(rng, (n, dg * 2 * k * k, ho, wo), -1.5, 1.5)
        mask = _uniform(rng, (n, dg * k * k, ho, wo), 0.0, 1.0)
        weight = _uniform(rng, (co, c // g, k, k), -0.5, 0.5)
        bias = _uniform(rng, (co,), -0.2, 0.2) if with_bias else None
        y = modulated_deform_conv_ref(x, offset, mask, weight, bias, (s, s), (p, p), (d, d), g, dg)
        ins = [("input", x), ("offset", offset), ("mask", mask), ("weight", weight)]
        if with_bias:
            ins.append(("bias", bias))
        attrs = dict(stride=[s, s], padding=[p, p], dilation=[d, d], groups=g, deform_groups=dg)
        notes = MDCN_NOTES
        if domain == "mmcv":
            notes = ("mmcv 1.x exports mmcv::MMCVModulatedDeformConv2d; mmdeploy's kernel is "
                     "registered in both the mmdeploy and mmcv domains. " + notes)
        if g > 1 and dg > 1:
            notes += MDCN_GROUPS_CAVEAT
        if not with_bias:
            notes += " This case has no bias input (4 inputs)."
        out.append(case(name, domain, "MMCVModulatedDeformConv2d", attrs, ins, [("output", y)],
                        rtol=1e-4, atol=1e-4, standard="DeformConv-19", notes=notes))

    # mmcv's DCNv1 (no mask): same reference with mask = 1.
    rng = _rng(205)
    x = _uniform(rng, (1, 4, 6, 6))
    offset = _uniform(rng, (1, 2 * 2 * 9, 6, 6), -1.5, 1.5)
    weight = _uniform(rng, (4, 2, 3, 3), -0.5, 0.5)
    y = modulated_deform_conv_ref(x, offset, None, weight, None, (1, 1), (1, 1), (1, 1), 2, 2)
    attrs = dict(stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=2, deform_groups=2,
                 bias=0, im2col_step=32)
    out.append(case(
        "mmcv_deform_conv_g2_dg2", "mmcv", "MMCVDeformConv2d", attrs,
        [("input", x), ("offset", offset), ("weight", weight)], [("output", y)],
        rtol=1e-4, atol=1e-4, standard="DeformConv-19",
        notes=("mmcv 1.x DCNv1: inputs input, offset, weight (3, no mask, no bias); attributes "
               "stride, padding, dilation (int lists), groups, deform_groups (int), and bias, "
               "im2col_step (int; exported by mmcv/ops/deform_conv.py, bias is always 0 there and "
               "the ORT kernel ignores both). Same sampling as MMCVModulatedDeformConv2d with "
               "mask = 1; DeformConv-19 without B and mask." + MDCN_GROUPS_CAVEAT)))
    return out


NMS_ROTATED_BOXES = np.array([
    [  # batch 0: cx, cy, w, h, theta (rad)
        [10.0, 10.0, 8.0, 4.0, 0.0],
        [10.4, 10.2, 8.0, 4.0, 0.1],     # IoU with 0 ~0.8: suppressed by it (or suppresses it)
        [10.0, 10.0, 8.0, 4.0, 1.5708],  # crossing 0 at right angles: IoU ~1/3, survives
        [30.0, 30.0, 6.0, 6.0, 0.3],
        [31.0, 30.5, 6.0, 6.0, 0.5],     # IoU with 3 ~0.6
        [50.0, 12.0, 5.0, 3.0, -0.4],    # alone
    ],
    [  # batch 1: a chain A-B-C where A and C barely overlap
        [20.0, 20.0, 10.0, 6.0, 0.2],
        [22.2, 20.4, 10.0, 6.0, 0.2],    # IoU with A ~0.63
        [24.4, 20.8, 10.0, 6.0, 0.2],    # IoU with B ~0.63, with A ~0.37
        [20.0, 40.0, 4.0, 12.0, -0.6],
        [21.0, 40.5, 4.0, 12.0, 0.9],
        [60.0, 60.0, 3.0, 3.0, 0.0],
    ],
], np.float32)

NMS_ROTATED_SCORES = np.array([
    [[0.90, 0.85, 0.60, 0.70, 0.80, 0.03],   # box 5 below score_threshold
     [0.20, 0.95, 0.50, 0.45, 0.40, 0.30]],
    [[0.91, 0.81, 0.71, 0.61, 0.52, 0.42],
     [0.33, 0.66, 0.44, 0.77, 0.88, 0.02]],
], np.float32)


def nms_rotated_cases():
    thr, score_thr = 0.5, 0.05
    idx = nms_rotated_ref(NMS_ROTATED_BOXES, NMS_ROTATED_SCORES, thr, score_thr)
    attrs = dict(iou_threshold=thr, score_threshold=score_thr)
    return [case(
        "nms_rotated", "mmdeploy", "NMSRotated", attrs,
        [("boxes", NMS_ROTATED_BOXES), ("scores", NMS_ROTATED_SCORES)], [("indices", idx)],
        rtol=0, atol=0, out_shapes={"indices": ["num_selected", 3]},
        notes=("boxes [B, N, 5] = (cx, cy, w, h, theta in radians), scores [B, num_classes, N] "
               "(the docs' 2-D/1-D shapes are out of date; the kernel and "
               "mmdeploy/mmcv/ops/nms_rotated.py use these). Attributes iou_threshold and "
               "score_threshold (float, both required). Output int64 [num_selected, 3] rows "
               "(batch, class, box): per batch, per class, kept boxes in descending score. "
               "Suppression when rotated IoU > iou_threshold (strict), output when score > "
               "score_threshold (strict). Box corners: local corners (+-w/2, +-h/2) rotated by "
               "[[cos, -sin], [sin, cos]] (mmcv's clockwise convention in image space). Every "
               "IoU in this case is at least 0.05 from the threshold and no scores tie."))]


NMS_MATCH_BOXES = np.array([
    [[0, 0, 10, 10], [1, 1, 11, 11], [0.5, 0, 10.5, 9.5], [20, 20, 30, 30], [21, 21, 31, 31],
     [40, 0, 45, 5]],
    [[5, 5, 15, 25], [6, 5, 16, 25], [30, 30, 40, 40], [31, 31, 41, 41], [30.5, 30, 40.5, 40],
     [50, 50, 52, 52]],
], np.float32)

NMS_MATCH_SCORES = np.array([
    [[0.90, 0.80, 0.70, 0.65, 0.60, 0.55],
     [0.30, 0.05, 0.95, 0.08, 0.07, 0.50]],   # box 3 (below score_thr) still suppresses box 4
    [[0.51, 0.92, 0.73, 0.84, 0.62, 0.41],
     [0.12, 0.22, 0.32, 0.42, 0.52, 0.62]],
], np.float32)


def nms_match_cases():
    iou_thr, score_thr = 0.6, 0.1
    idx = nms_match_ref(NMS_MATCH_BOXES, NMS_MATCH_SCORES, iou_thr, score_thr)
    return [case(
        "nms_match", "mmdeploy", "NMSMatch", {},
        [("boxes", NMS_MATCH_BOXES), ("scores", NMS_MATCH_SCORES)], [("indices", idx)],
        inits=[("iou_threshold", _f32([iou_thr])), ("score_threshold", _f32([score_thr]))],
        rtol=0, atol=0, out_shapes={"indices": ["num_matched", 4]},
        notes=("No attributes (the docs' iou_thr/score_thr table is out of date): 4 inputs, boxes "
               "[B, N, 4] = (x1, y1, x2, y2), scores [B, num_classes, N], iou_threshold float [1], "
               "score_threshold float [1] (Constant tensors in exported models; initializers "
               "here). Output int64 [K, 4] rows (batch, class, kept box, suppressed box). In "
               "descending score, each not-yet-suppressed box suppresses every later "
               "not-yet-suppressed box with IoU >= iou_threshold (IoU = inter / (area1 + area2 - "
               "inter), no +1 on widths; the kernel adds 1e-10 to the denominator); the keeper "
               "emits one row per suppressed box, in score order, only when its score > "
               "score_threshold. Keepers below score_threshold still suppress. Every IoU in "
               "this case is at least 0.05 from the threshold."))]


def roi_align_cases():
    rng = _rng(301)
    feat = _uniform(rng, (2, 3, 10, 12))
    # image coordinates (spatial_scale 0.5): (batch, x1, y1, x2, y2); the last box leaves the map
    rois = _f32([[0, 2.6, 4.2, 15.4, 17.2],
                 [1, 0.8, 1.8, 10.6, 8.4],
                 [0, 12.4, 2.2, 23.8, 18.8],
                 [1, -5.0, 6.2, 8.8, 23.4]])
    out = []
    for name, mode, aligned, sr in [("roi_align_avg_aligned1_sr2", "avg", 1, 2),
                                    ("roi_align_avg_aligned0_sr0", "avg", 0, 0),
                                    ("roi_align_max_aligned1_sr0", "max", 1, 0),
                                    ("roi_align_max_aligned0_sr2", "max", 0, 2)]:
        y = roi_align_ref(feat, rois, 3, 2, 0.5, sr, mode, aligned)
        attrs = dict(output_height=3, output_width=2, spatial_scale=0.5, sampling_ratio=sr,
                     mode=mode, aligned=aligned)
        std = "RoiAlign-16" if mode == "avg" else None
        out.append(case(
            name, "mmcv", "MMCVRoiAlign", attrs, [("input", feat), ("rois", rois)],
            [("output", y)], rtol=1e-4, atol=1e-5, standard=std,
            notes=("input [N,C,H,W], rois [K,5] = (batch_index, x1, y1, x2, y2) in input-image "
                   "coordinates (times spatial_scale gives feature-map coordinates); output "
                   "[K, C, output_height, output_width]. Attributes (all required by the mmcv "
                   "1.x ORT kernel): output_height, output_width (int), spatial_scale (float), "
                   "sampling_ratio (int; 0 = ceil(roi size / output size) samples per bin side), "
                   "mode (STRING 'avg' or 'max'; anything but 'max' averages), aligned (int). "
                   "aligned=1: box shifted by -0.5 px after scaling; aligned=0: legacy, box "
                   "size clamped to >= 1. Samples at y < -1 or y > H (x alike) are 0, others "
                   "clamp into the map (Caffe2 RoIAlign). 'max' takes the max of the "
                   "interpolated samples. Standard equivalent for 'avg': RoiAlign-16(X, "
                   "rois[:, 1:5], batch_indices=int64(rois[:, 0])) with "
                   "coordinate_transformation_mode 'half_pixel' for aligned=1, "
                   "'output_half_pixel' for aligned=0 (what mmdeploy/mmcv/ops/roi_align.py emits "
                   "for ONNX Runtime at opset 16). ONNX 'max' differs (ONNX Runtime maxes the "
                   "weighted corner terms), so 'max' has no standard equivalent. mmdeploy "
                   "itself exports mmcv::MMCVRoiAlign only for PPLNN and TensorRT.")))
    return out


def roi_align_rotated_cases():
    rng = _rng(401)
    feat = _uniform(rng, (2, 3, 10, 12))
    # (batch, cx, cy, w, h, theta rad) in image coordinates, spatial_scale 0.5
    rois = _f32([[0, 10.2, 8.6, 9.4, 5.8, 0.3],
                 [1, 12.8, 11.4, 13.0, 7.4, -0.7],
                 [0, 4.6, 15.0, 6.6, 10.2, 1.2]])
    out = []
    for name, aligned, clockwise, sr in [("roi_align_rotated_aligned1_sr2", 1, 0, 2),
                                         ("roi_align_rotated_aligned0_clockwise_sr0", 0, 1, 0)]:
        y = roi_align_rotated_ref(feat, rois, 2, 3, 0.5, sr, aligned, clockwise)
        attrs = dict(output_height=2, output_width=3, spatial_scale=0.5, sampling_ratio=sr,
                     aligned=aligned, clockwise=clockwise)
        out.append(case(
            name, "mmdeploy", "MMCVRoIAlignRotated", attrs, [("input", feat), ("rois", rois)],
            [("output", y)], rtol=1e-4, atol=1e-5,
            notes=("The op is exported as mmdeploy::MMCVRoIAlignRotated (the docs call it "
                   "RoIAlignRotated; the kernel's GetName and mmdeploy/mmcv/ops/"
                   "roi_align_rotated.py say MMCVRoIAlignRotated; mmcv 1.x exports the same "
                   "name in domain mmcv). input [N,C,H,W], rois [K,6] = (batch_index, cx, cy, w, "
                   "h, theta in radians); output [K, C, output_height, output_width], average "
                   "pooling. Attributes (all required): output_height, output_width (int), "
                   "spatial_scale (float), sampling_ratio (int, 0 = adaptive ceil(h / "
                   "output_height)), aligned (int: 1 shifts the scaled centre by -0.5; 0 clamps "
                   "w, h to >= 1), clockwise (int: 1 negates theta). A bin sample (yy, xx) "
                   "relative to the centre maps to y = yy*cos(t) - xx*sin(t) + cy, x = "
                   "yy*sin(t) + xx*cos(t) + cx. Sampling as MMCVRoiAlign (zero beyond -1 and "
                   "H/W, clamped inside). mmcv 1.x's symbolic passes output_width_i=out_h "
                   "(a bug for non-square outputs); mmdeploy's passes output_size[1].")))
    return out


def nms_cases():
    boxes = _f32([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0.5, 9, 10.5], [20, 20, 30, 30],
                  [22, 21, 31, 32], [6, 6, 16, 16], [40, 40, 41, 41], [40.5, 40.5, 41.5, 41.5]])
    scores = _f32([0.9, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5, 0.45])
    out = []
    for name, thr, offset in [("mmcv_nms_offset0", 0.5, 0), ("mmcv_nms_offset1", 0.3, 1)]:
        idx = nms_ref(boxes, scores, thr, offset)
        out.append(case(
            name, "mmcv", "NonMaxSuppression", dict(iou_threshold=thr, offset=offset),
            [("boxes", boxes), ("scores", scores)], [("indices", idx)], rtol=0, atol=0,
            out_shapes={"indices": ["num_selected"]},
            notes=("mmcv 1.x's NMS op is mmcv::NonMaxSuppression (mmcv/ops/nms.py symbolic, used "
                   "when mmcv's ORT ops are loaded; the docs call it NMS). boxes [N, 4] = (x1, y1, "
                   "x2, y2), scores [N]; attributes iou_threshold (float), offset (int 0/1: widths "
                   "are x2 - x1 + offset), both required by the kernel. Output int64 [K] kept "
                   "indices in descending score (the docs say int32; the kernel writes int64). "
                   "Suppression when IoU > iou_threshold. No score threshold or max count. For "
                   "offset 0 this is standard NonMaxSuppression-11 on boxes[None], "
                   "scores[None, None] with output column 2, which is not a drop-in (3-column "
                   "output), hence standard_equivalent null. Every IoU is at least 0.05 from the "
                   "threshold.")))
    return out


def soft_nms_cases():
    boxes = _f32([[0, 0, 10, 10], [1, 1, 11, 11], [2, 0, 12, 10], [20, 20, 30, 30],
                  [22, 21, 31, 32], [5, 5, 15, 15], [40, 40, 44, 44]])
    scores = _f32([0.9, 0.8, 0.75, 0.7, 0.65, 0.6, 0.35])
    out = []
    for name, attrs in [
            ("mmcv_soft_nms_linear", dict(iou_threshold=0.3, sigma=0.5, min_score=0.2, method=1,
                                          offset=0)),
            ("mmcv_soft_nms_gaussian_offset1", dict(iou_threshold=0.3, sigma=0.5, min_score=0.3,
                                                    method=2, offset=1))]:
        dets, inds = soft_nms_ref(boxes, scores, **attrs)
        out.append(case(
            name, "mmcv", "SoftNonMaxSuppression", attrs,
            [("boxes", boxes), ("scores", scores)], [("dets", dets), ("indices", inds)],
            rtol=1e-5, atol=1e-5, out_shapes={"dets": ["num_valid", 5], "indices": ["num_valid"]},
            notes=("mmcv 1.x mmcv::SoftNonMaxSuppression. boxes [N, 4], scores [N]; attributes "
                   "iou_threshold, sigma, min_score (float), method (int: 0 naive, 1 linear, "
                   "2 gaussian), offset (int 0/1), all required. Outputs dets float [K, 5] = "
                   "(x1, y1, x2, y2, rescored score at the time it was taken) and indices int64 "
                   "[K], in the order taken: repeatedly the highest current score; then every "
                   "remaining box is rescaled (naive: 0 if IoU >= thr; linear: 1 - IoU if IoU >= "
                   "thr; gaussian: exp(-IoU^2/sigma), thr unused) and dropped if now < "
                   "min_score. (The first box is taken even if below min_score.) Tolerances "
                   "apply to dets; indices exact.")))
    return out


def corner_pool_cases():
    rng = _rng(501)
    x = _uniform(rng, (1, 2, 4, 5))
    return [case(f"mmcv_corner_pool_{name}", "mmcv", "MMCVCornerPool", dict(mode=mode),
                 [("input", x)], [("output", corner_pool_ref(x, mode))], rtol=0, atol=0,
                 notes=("mmcv 1.x mmcv::MMCVCornerPool, input/output [N,C,H,W], attribute mode "
                        "(int, required): 0 top (out[h] = max of in[h:] along H), 1 bottom "
                        "(max of in[:h+1]), 2 left (max of in[w:] along W), 3 right (max of "
                        "in[:w+1]). Exact: only maxima of the inputs."))
            for mode, name in enumerate(["top", "bottom", "left", "right"])]


def cum_cases():
    x = _f32([[1, 3, 3, 2, 5, 5, 0],
              [4, 4, 1, 1, 6, 2, 0],
              [-1, -2, -2, 0, -3, -3, 7]])
    out = []
    for op, dim, is_max in [("cummax", 1, True), ("cummin", 0, False), ("cummin", 1, False)]:
        vals, idx = cum_ref(x, dim, is_max)
        out.append(case(
            f"mmcv_{op}_dim{dim}", "mmcv", op, dict(dim=dim), [("input", x)],
            [("output", vals), ("indices", idx)], rtol=0, atol=0,
            notes=(f"mmcv 1.x mmcv::{op} (torch.{op}): attribute dim (int, negative allowed); "
                   "outputs values (input's dtype and shape) and int64 indices. On ties the "
                   "index moves to the later element (the kernel compares with >= for cummax, "
                   "<= for cummin, as torch); this input has ties on purpose.")))
    return out


def mixed_case():
    """Conv -> Relu -> mmdeploy::grid_sampler -> Add: standard and custom ops in one graph."""
    rng = _rng(601)
    x = _uniform(rng, (1, 3, 8, 8))
    grid = _uniform(rng, (1, 6, 6, 2), -1.1, 1.1)
    w = _uniform(rng, (4, 3, 3, 3), -0.4, 0.4)
    b = _uniform(rng, (4,), -0.1, 0.1)
    shift = _uniform(rng, (1, 4, 1, 1), -0.5, 0.5)
    r = np.maximum(conv2d_ref(x, w, b, 1), 0).astype(np.float32)
    y = (grid_sample_ref(r, grid, 0, 0, 0).astype(np.float64) + shift).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "conv.w", "conv.b"], ["conv"], pads=[1, 1, 1, 1],
                         name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("grid_sampler", ["relu", "grid"], ["sampled"], domain="mmdeploy",
                         name="grid_sampler", interpolation_mode=0, padding_mode=0,
                         align_corners=0),
        helper.make_node("Add", ["sampled", "shift"], ["output"], name="add"),
    ]
    vi = [helper.make_tensor_value_info(n, F32, s) for n, s in
          [("conv", [1, 4, 8, 8]), ("relu", [1, 4, 8, 8]), ("sampled", [1, 4, 6, 6])]]
    return case(
        "mixed_conv_relu_grid_sampler_add", "mmdeploy", "grid_sampler",
        dict(interpolation_mode=0, padding_mode=0, align_corners=0),
        [("image", x), ("grid", grid)], [("output", y)], rtol=1e-4, atol=1e-5,
        standard="GridSample-16", nodes=nodes, value_info=vi,
        inits=[("conv.w", w), ("conv.b", b), ("shift", shift)],
        notes=("A graph mixing standard ops (Conv 3x3 pad 1, Relu, Add; opset 13) with one "
               "mmdeploy::grid_sampler (bilinear, zeros, align_corners 0) between them. Expected "
               "output from numpy (conv, relu, the grid_sampler reference, add). Replacing the "
               "custom node with GridSample-16 gives a standard model (--self-check runs that "
               "in onnxruntime)."))


def all_cases():
    return (grid_sampler_cases() + mdcn_cases() + nms_rotated_cases()
            + roi_align_rotated_cases() + nms_match_cases() + roi_align_cases() + nms_cases()
            + soft_nms_cases() + corner_pool_cases() + cum_cases() + [mixed_case()])


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _dtype(a):
    return {np.dtype(np.float32): F32, np.dtype(np.int64): I64}[a.dtype]


def build_model(c):
    if c["nodes"] is not None:
        nodes = c["nodes"]
    else:
        names = [n for n, _ in c["inputs"]] + [n for n, _ in c["inits"]]
        nodes = [helper.make_node(c["op_type"], names, [n for n, _ in c["outputs"]],
                                  domain=c["domain"], name=c["op_type"], **c["attrs"])]
    inputs = [helper.make_tensor_value_info(n, _dtype(a), list(a.shape)) for n, a in c["inputs"]]
    outputs = [helper.make_tensor_value_info(n, _dtype(a), c["out_shapes"].get(n, list(a.shape)))
               for n, a in c["outputs"]]
    inits = [numpy_helper.from_array(a, n) for n, a in c["inits"]]
    graph = helper.make_graph(nodes, c["name"], inputs, outputs, inits, value_info=c["value_info"])
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid(c["domain"], 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="rdeploy-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _save_pb(arr, path, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def write_case(root, c):
    d = os.path.join(root, c["name"])
    shutil.rmtree(d, ignore_errors=True)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds)
    onnx.save(build_model(c), os.path.join(d, "model.onnx"))
    for k, (n, a) in enumerate(c["inputs"]):
        _save_pb(a, os.path.join(ds, f"input_{k}.pb"), n)
    for k, (n, a) in enumerate(c["outputs"]):
        _save_pb(a, os.path.join(ds, f"output_{k}.pb"), n)

    def desc(pairs):
        return [{"name": n, "dtype": str(a.dtype), "shape": c["out_shapes"].get(n, list(a.shape))}
                for n, a in pairs]

    meta = {
        "domain": c["domain"], "op_type": c["op_type"], "attributes": c["attrs"],
        "rtol": c["rtol"], "atol": c["atol"], "standard_equivalent": c["standard"],
        "notes": c["notes"], "inputs": desc(c["inputs"]), "outputs": desc(c["outputs"]),
        "initializers": [n for n, _ in c["inits"]],
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def main(out_dir=DEFAULT_OUT):
    cases = all_cases()
    os.makedirs(out_dir, exist_ok=True)
    for c in cases:
        write_case(out_dir, c)
    index = {
        "generator": "scripts/make_custom_op_models.py",
        "cases": [{"name": c["name"], "domain": c["domain"], "op_type": c["op_type"],
                   "standard_equivalent": c["standard"]} for c in cases],
    }
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"custom-op models: {len(cases)} cases in {out_dir}")
    return cases


# --------------------------------------------------------------------------------------------
# Self-check: the references against onnxruntime's standard ops
# --------------------------------------------------------------------------------------------

def _run_ort(nodes, inputs, outputs, opset):
    import onnxruntime as ort

    graph = helper.make_graph(
        nodes, "check",
        [helper.make_tensor_value_info(n, _dtype(a), list(a.shape)) for n, a in inputs],
        [helper.make_tensor_value_info(n, F32, None) for n in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 17 else 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(inputs))


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def close(self, what, got, want, rtol, atol):
        got, want = np.asarray(got), np.asarray(want)
        ok = got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol)
        err = float(np.max(np.abs(got.astype(np.float64) - want))) if got.shape == want.shape \
            else float("nan")
        self.report(what, ok, f"max abs diff {err:.2e} (rtol {rtol}, atol {atol})")

    def report(self, what, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {what}  {detail}")
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def self_check():
    ck = Checks()
    rng = _rng(7)

    # (a) grid_sampler vs GridSample-16, every mode x padding x align_corners
    x = _uniform(rng, (2, 3, 5, 6))
    grid = _uniform(rng, (2, 4, 5, 2), -1.3, 1.3)
    for mode in (0, 1, 2):
        for pad in (0, 1, 2):
            for ac in (0, 1):
                g = grid
                if mode == GS_NEAREST:  # redraw until no coordinate rounds on a .5 tie
                    while True:
                        try:
                            guard_nearest(g, 5, 6, ac, pad)
                            break
                        except AssertionError:
                            g = _uniform(rng, grid.shape, -1.3, 1.3)
                node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=GS_MODES[mode],
                                        padding_mode=GS_PADS[pad], align_corners=ac)
                (got,) = _run_ort([node], [("x", x), ("grid", g)], ["y"], 16)
                ck.close(f"grid_sampler {GS_MODES[mode]}/{GS_PADS[pad]}/ac{ac} == ORT "
                         f"GridSample-16", grid_sample_ref(x, g, mode, pad, ac), got,
                         1e-4, 1e-5)

    # (b) MMCVRoiAlign avg vs RoiAlign-16
    feat = _uniform(rng, (2, 3, 10, 12))
    rois = _f32([[0, 2.6, 4.2, 15.4, 17.2], [1, 0.8, 1.8, 10.6, 8.4], [0, 12.4, 2.2, 23.8, 18.8],
                 [1, -5.0, 6.2, 8.8, 23.4], [0, 6.1, 6.3, 6.7, 7.1]])
    for aligned in (0, 1):
        for sr in (0, 2):
            node = helper.make_node(
                "RoiAlign", ["x", "rois", "bi"], ["y"], output_height=3, output_width=2,
                spatial_scale=0.5, sampling_ratio=sr, mode="avg",
                coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
            (got,) = _run_ort([node], [("x", feat), ("rois", rois[:, 1:].copy()),
                                       ("bi", rois[:, 0].astype(np.int64))], ["y"], 16)
            ck.close(f"MMCVRoiAlign avg aligned={aligned} sampling_ratio={sr} == ORT RoiAlign-16",
                     roi_align_ref(feat, rois, 3, 2, 0.5, sr, "avg", aligned), got, 1e-4, 1e-5)

    # (b') MMCVRoIAlignRotated at theta 0 == RoiAlign-16 on the same axis-aligned box (boxes
    # big enough that aligned=0's size clamp, which differs between the two, does not apply)
    rrois = _f32([[0, 10.2, 8.6, 9.4, 5.8, 0.0], [1, 12.8, 11.4, 13.0, 7.4, 0.0],
                  [0, 4.6, 15.0, 6.6, 10.2, 0.0]])
    boxes = np.concatenate([rrois[:, 1:3] - rrois[:, 3:5] / 2, rrois[:, 1:3] + rrois[:, 3:5] / 2],
                           1).astype(np.float32)
    for aligned in (0, 1):
        for sr in (0, 2):
            node = helper.make_node(
                "RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2, output_width=3,
                spatial_scale=0.5, sampling_ratio=sr, mode="avg",
                coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
            (got,) = _run_ort([node], [("x", feat), ("rois", boxes),
                                       ("bi", rrois[:, 0].astype(np.int64))], ["y"], 16)
            ck.close(f"MMCVRoIAlignRotated theta 0, aligned={aligned} sampling_ratio={sr} == ORT "
                     "RoiAlign-16", roi_align_rotated_ref(feat, rrois, 2, 3, 0.5, sr, aligned, 0),
                     got, 1e-4, 1e-5)

    # (c) ModulatedDeformConv2d: zero offsets + mask 1 == Conv; general == DeformConv-19
    x = _uniform(rng, (2, 4, 7, 7))
    for g, s, p, d in [(1, 1, 1, 1), (2, 2, 1, 1), (1, 1, 2, 2)]:
        w = _uniform(rng, (6, 4 // g, 3, 3), -0.5, 0.5)
        b = _uniform(rng, (6,), -0.2, 0.2)
        ho = (7 + 2 * p - (d * 2 + 1)) // s + 1
        zero = np.zeros((2, 2 * 9, ho, ho), np.float32)
        ones = np.ones((2, 9, ho, ho), np.float32)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[p] * 4, strides=[s, s],
                                dilations=[d, d], group=g)
        (got,) = _run_ort([node], [("x", x), ("w", w), ("b", b)], ["y"], 13)
        ck.close(f"MMCVModulatedDeformConv2d zero offset, mask 1 (groups {g}, stride {s}, pad {p},"
                 f" dil {d}) == ORT Conv",
                 modulated_deform_conv_ref(x, zero, ones, w, b, (s, s), (p, p), (d, d), g, 1),
                 got, 1e-4, 1e-4)
    from onnx.reference import ReferenceEvaluator

    for g, dg, s, p, d in [(1, 1, 1, 1, 1), (2, 2, 2, 1, 1), (1, 2, 1, 2, 2), (2, 1, 1, 1, 1),
                           (2, 4, 1, 0, 1)]:
        w = _uniform(rng, (4, 4 // g, 3, 3), -0.5, 0.5)
        b = _uniform(rng, (4,), -0.2, 0.2)
        ho = (7 + 2 * p - (d * 2 + 1)) // s + 1
        off = _uniform(rng, (2, dg * 18, ho, ho), -1.5, 1.5)
        mask = _uniform(rng, (2, dg * 9, ho, ho), 0.0, 1.0)
        want = modulated_deform_conv_ref(x, off, mask, w, b, (s, s), (p, p), (d, d), g, dg)
        node = helper.make_node("DeformConv", ["x", "w", "off", "b", "mask"], ["y"],
                                kernel_shape=[3, 3], pads=[p] * 4, strides=[s, s],
                                dilations=[d, d], group=g, offset_group=dg)
        feeds = [("x", x), ("w", w), ("off", off), ("b", b), ("mask", mask)]
        what = f"(groups {g}, deform_groups {dg}, stride {s}, pad {p}, dil {d})"
        try:
            (got,) = _run_ort([node], feeds, ["y"], 19)
            ck.close(f"MMCVModulatedDeformConv2d {what} == ORT DeformConv-19", want, got,
                     1e-4, 1e-4)
        except Exception as e:  # an ORT without a DeformConv CPU kernel
            ck.report(f"MMCVModulatedDeformConv2d {what} vs ORT DeformConv-19", False,
                      f"ORT could not run DeformConv: {str(e)[:120]}")
        graph = helper.make_graph([node], "dc", [helper.make_tensor_value_info(
            n, F32, list(a.shape)) for n, a in feeds], [helper.make_tensor_value_info("y", F32,
                                                                                     None)])
        ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", 19)]))
        ck.close(f"MMCVModulatedDeformConv2d {what} == onnx.reference DeformConv", want,
                 ref.run(None, dict(feeds))[0], 1e-4, 1e-4)

    # Informational: the per-conv-group channel mapping of mmdeploy's/mmcv 1.x's ORT CPU kernels
    # (see MDCN_GROUPS_CAVEAT) on the groups=2, deform_groups=2 case -- how far it lands.
    c = next(c for c in mdcn_cases() if c["name"] == "modulated_deform_conv_g2_dg2_s2")
    ins, a = dict(c["inputs"]), c["attrs"]
    cg, cog = ins["weight"].shape[1], ins["weight"].shape[0] // a["groups"]
    per_group = np.concatenate([modulated_deform_conv_ref(
        ins["input"][:, g * cg:(g + 1) * cg], ins["offset"], ins["mask"],
        ins["weight"][g * cog:(g + 1) * cog], ins["bias"][g * cog:(g + 1) * cog], a["stride"],
        a["padding"], a["dilation"], 1, a["deform_groups"]) for g in range(a["groups"])], 1)
    diff = float(np.abs(per_group - c["outputs"][0][1]).max())
    print(f"INFO  {c['name']}: the ORT kernels' per-group deformable-group mapping would differ "
          f"from the expected output by up to {diff:.3f}")

    # (d) rotated IoU (polygon clipping) vs rasterised IoU, and vs the axis-aligned formula
    for bx in NMS_ROTATED_BOXES:
        for i in range(len(bx)):
            for j in range(i + 1, len(bx)):
                a, b = rotated_iou(bx[i], bx[j]), rotated_iou_raster(bx[i], bx[j])
                if a > 0 or b > 0:
                    ck.close(f"rotated IoU {np.round(bx[i].astype(float), 4).tolist()} / "
                             f"{np.round(bx[j].astype(float), 4).tolist()} ~ rasterised",
                             a, b, 0, 0.01)
    aa = [(5.0, 5.0, 4.0, 2.0, 0.0), (6.0, 5.5, 3.0, 3.0, 0.0)]
    ck.close("rotated IoU at theta 0 == axis-aligned IoU", rotated_iou(*aa),
             box_iou([3, 4, 7, 6], [4.5, 4, 7.5, 7]), 0, 1e-12)

    # (e) mmcv NMS (offset 0) vs ORT NonMaxSuppression
    c = nms_cases()[0]
    boxes, scores = c["inputs"][0][1], c["inputs"][1][1]
    import onnxruntime as ort

    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["b", "s", "m", "t"], ["y"])], "nms",
        [helper.make_tensor_value_info("b", F32, [1, len(boxes), 4]),
         helper.make_tensor_value_info("s", F32, [1, 1, len(boxes)])],
        [helper.make_tensor_value_info("y", I64, None)],
        [numpy_helper.from_array(np.array([100], np.int64), "m"),
         numpy_helper.from_array(_f32([c["attrs"]["iou_threshold"]]), "t")])
    sess = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid(
        "", 13)], ir_version=8).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"b": boxes[None], "s": scores[None, None]})[0][:, 2]
    want = c["outputs"][0][1]
    ck.report("mmcv NonMaxSuppression offset 0 == ORT NonMaxSuppression",
              np.array_equal(got, want), f"{want.tolist()} vs {got.tolist()}")

    # (f) the mixed model with GridSample-16 in place of the custom node
    m = mixed_case()
    nodes = list(m["nodes"])
    nodes[2] = helper.make_node("GridSample", ["relu", "grid"], ["sampled"], mode="bilinear",
                                padding_mode="zeros", align_corners=0)
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info(n, F32, list(a.shape))
                         for n, a in m["inputs"]],
        [helper.make_tensor_value_info("output", F32, None)],
        [numpy_helper.from_array(a, n) for n, a in m["inits"]])
    sess = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid(
        "", 16)], ir_version=8).SerializeToString(), providers=["CPUExecutionProvider"])
    ck.close("mixed model expected output == ORT with GridSample-16", m["outputs"][0][1],
             sess.run(None, dict(m["inputs"]))[0], 1e-4, 1e-5)

    # (h) every generated case that has a standard equivalent, on its own data
    for c in all_cases():
        if c["standard"] is None or c["nodes"] is not None:
            continue
        ins, a = dict(c["inputs"]), c["attrs"]
        if c["op_type"] == "grid_sampler":
            node = helper.make_node("GridSample", ["input", "grid"], ["y"],
                                    mode=GS_MODES[a["interpolation_mode"]],
                                    padding_mode=GS_PADS[a["padding_mode"]],
                                    align_corners=a["align_corners"])
            feeds, opset = [("input", ins["input"]), ("grid", ins["grid"])], 16
        elif c["op_type"] in ("MMCVModulatedDeformConv2d", "MMCVDeformConv2d"):
            p_h, p_w = a["padding"]
            names = ["input", "weight", "offset", "bias" if "bias" in ins else "",
                     "mask" if "mask" in ins else ""]
            while names[-1] == "":
                names.pop()
            node = helper.make_node("DeformConv", names, ["y"],
                                    kernel_shape=list(ins["weight"].shape[2:]),
                                    pads=[p_h, p_w, p_h, p_w], strides=a["stride"],
                                    dilations=a["dilation"], group=a["groups"],
                                    offset_group=a["deform_groups"])
            feeds, opset = [(n, ins[n]) for n in names if n], 19
        elif c["op_type"] == "MMCVRoiAlign":
            rois = ins["rois"]
            node = helper.make_node(
                "RoiAlign", ["input", "boxes", "bi"], ["y"], output_height=a["output_height"],
                output_width=a["output_width"], spatial_scale=a["spatial_scale"],
                sampling_ratio=a["sampling_ratio"], mode=a["mode"],
                coordinate_transformation_mode="half_pixel" if a["aligned"]
                else "output_half_pixel")
            feeds = [("input", ins["input"]), ("boxes", rois[:, 1:].copy()),
                     ("bi", rois[:, 0].astype(np.int64))]
            opset = 16
        else:
            ck.report(f"case {c['name']}: no standard run for {c['standard']}", False)
            continue
        (got,) = _run_ort([node], feeds, ["y"], opset)
        ck.close(f"case {c['name']} expected output == ORT {c['standard']}", c["outputs"][0][1],
                 got, c["rtol"], c["atol"])

    # (g) CornerPool and cummax/cummin against plain numpy formulations
    xc = _uniform(rng, (1, 2, 4, 5))
    for mode, want in enumerate([
            np.stack([xc[:, :, h:].max(2) for h in range(4)], 2),
            np.stack([xc[:, :, :h + 1].max(2) for h in range(4)], 2),
            np.stack([xc[:, :, :, w:].max(3) for w in range(5)], 3),
            np.stack([xc[:, :, :, :w + 1].max(3) for w in range(5)], 3)]):
        ck.close(f"CornerPool mode {mode} == slice max", corner_pool_ref(xc, mode), want, 0, 0)
    xr = _f32([[1, 3, 3, 2, 5, 5, 0]])
    v, i = cum_ref(xr, 1, True)
    ck.report("cummax ties take the later index", v.tolist() == [[1, 3, 3, 3, 5, 5, 5]]
              and i.tolist() == [[0, 1, 2, 2, 4, 5, 5]], f"{v.tolist()} {i.tolist()}")

    print(f"self-check: {ck.passed} passed, {ck.failed} failed")
    return ck.failed == 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?", default=DEFAULT_OUT)
    ap.add_argument("--self-check", action="store_true",
                    help="cross-check the references against onnxruntime and exit")
    args = ap.parse_args()
    if args.self_check:
        sys.exit(0 if self_check() else 1)
    main(args.out_dir)
