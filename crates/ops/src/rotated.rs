//! The intersection-over-union of two rotated boxes: the convex polygon where they overlap
//! (edge crossings plus corners inside the other box, ordered by a Graham scan), after
//! detectron2's `box_iou_rotated_utils.h` as MMDeploy's `nms_rotated.cpp` carries it.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Pt {
    x: f32,
    y: f32,
}

impl std::ops::Sub for Pt {
    type Output = Pt;
    fn sub(self, o: Pt) -> Pt {
        Pt {
            x: self.x - o.x,
            y: self.y - o.y,
        }
    }
}

impl std::ops::Add for Pt {
    type Output = Pt;
    fn add(self, o: Pt) -> Pt {
        Pt {
            x: self.x + o.x,
            y: self.y + o.y,
        }
    }
}

impl Pt {
    fn scale(self, k: f32) -> Pt {
        Pt {
            x: self.x * k,
            y: self.y * k,
        }
    }
}

fn dot(a: Pt, b: Pt) -> f32 {
    a.x * b.x + a.y * b.y
}

fn cross(a: Pt, b: Pt) -> f32 {
    a.x * b.y - b.x * a.y
}

/// A rotated box: centre, width, height, angle in radians.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RotatedBox {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    pub a: f32,
}

fn vertices(b: &RotatedBox) -> [Pt; 4] {
    // cos and sin in double, as the C++ (`double theta = box.a`).
    let theta = f64::from(b.a);
    let cos2 = theta.cos() as f32 * 0.5;
    let sin2 = theta.sin() as f32 * 0.5;
    let p0 = Pt {
        x: b.cx - sin2 * b.h - cos2 * b.w,
        y: b.cy + cos2 * b.h - sin2 * b.w,
    };
    let p1 = Pt {
        x: b.cx + sin2 * b.h - cos2 * b.w,
        y: b.cy - cos2 * b.h - sin2 * b.w,
    };
    let p2 = Pt {
        x: 2.0 * b.cx - p0.x,
        y: 2.0 * b.cy - p0.y,
    };
    let p3 = Pt {
        x: 2.0 * b.cx - p1.x,
        y: 2.0 * b.cy - p1.y,
    };
    [p0, p1, p2, p3]
}

/// Edge crossings of the two rectangles, and each one's corners inside the other (at most
/// 16 + 4 + 4 points, duplicates included).
fn intersection_points(p1: &[Pt; 4], p2: &[Pt; 4], out: &mut Vec<Pt>) {
    let v1: [Pt; 4] = std::array::from_fn(|i| p1[(i + 1) % 4] - p1[i]);
    let v2: [Pt; 4] = std::array::from_fn(|i| p2[(i + 1) % 4] - p2[i]);
    for i in 0..4 {
        for j in 0..4 {
            let det = cross(v2[j], v1[i]);
            if det.abs() <= 1e-14 {
                continue; // parallel edges
            }
            let v12 = p2[j] - p1[i];
            let t1 = cross(v2[j], v12) / det;
            let t2 = cross(v1[i], v12) / det;
            if (0.0..=1.0).contains(&t1) && (0.0..=1.0).contains(&t2) {
                out.push(p1[i] + v1[i].scale(t1));
            }
        }
    }
    for (pts, rect, v) in [(p1, p2, &v2), (p2, p1, &v1)] {
        let ab = v[0];
        let da = v[3];
        let ab_ab = dot(ab, ab);
        let ad_ad = dot(da, da);
        for &p in pts {
            let ap = p - rect[0];
            let ap_ab = dot(ap, ab);
            let ap_ad = -dot(ap, da);
            if ap_ab >= 0.0 && ap_ad >= 0.0 && ap_ab <= ab_ab && ap_ad <= ad_ad {
                out.push(p);
            }
        }
    }
}

/// The area of the convex hull of `p` (Graham scan, points shifted to the lowest one).
fn hull_area(p: &[Pt]) -> f32 {
    let n = p.len();
    if n < 3 {
        return 0.0;
    }
    // Lowest y, then lowest x.
    let mut t = 0;
    for i in 1..n {
        if p[i].y < p[t].y || (p[i].y == p[t].y && p[i].x < p[t].x) {
            t = i;
        }
    }
    let start = p[t];
    let mut q: Vec<Pt> = p.iter().map(|&v| v - start).collect();
    q.swap(0, t);
    // Sort by angle about the start point, nearer first among (near-)collinear points. The
    // C++ uses std::sort with this comparator, which is not a strict weak order for
    // near-collinear points; an insertion sort gives the same order where it is one and cannot
    // fail where it is not (Rust's sort_by may panic on an inconsistent comparator).
    let before = |a: Pt, b: Pt| {
        let c = cross(a, b);
        if c.abs() < 1e-6 {
            dot(a, a) < dot(b, b)
        } else {
            c > 0.0
        }
    };
    for i in 2..n {
        let mut j = i;
        while j > 1 && before(q[j], q[j - 1]) {
            q.swap(j, j - 1);
            j -= 1;
        }
    }
    // The first point not on top of the start.
    let Some(k) = (1..n).find(|&k| dot(q[k], q[k]) > 1e-8) else {
        return 0.0; // all points coincide
    };
    let mut stack: Vec<Pt> = Vec::with_capacity(n);
    stack.push(q[0]);
    stack.push(q[k]);
    for &pt in &q[k + 1..] {
        while stack.len() > 1 {
            let m = stack.len();
            if cross(pt - stack[m - 2], stack[m - 1] - stack[m - 2]) >= 0.0 {
                stack.pop();
            } else {
                break;
            }
        }
        stack.push(pt);
    }
    if stack.len() < 3 {
        return 0.0;
    }
    let mut area = 0.0f32;
    for i in 1..stack.len() - 1 {
        area += cross(stack[i] - stack[0], stack[i + 1] - stack[0]).abs();
    }
    area / 2.0
}

/// The area where two rotated boxes overlap.
fn intersection(a: &RotatedBox, b: &RotatedBox) -> f32 {
    let mut pts = Vec::with_capacity(24);
    intersection_points(&vertices(a), &vertices(b), &mut pts);
    if pts.len() <= 2 {
        return 0.0;
    }
    hull_area(&pts)
}

/// IoU of two rotated boxes. Both are first shifted so that the midpoint of their centres is
/// the origin (precision, as in the C++); a box of area below 1e-14 has IoU 0 (mmcv's
/// `single_box_iou_rotated`; MMDeploy's kernel divides 0 by 0 there, which suppresses nothing
/// either).
pub(crate) fn iou(a: &RotatedBox, b: &RotatedBox) -> f32 {
    let shift_x = (f64::from(a.cx) + f64::from(b.cx)) / 2.0;
    let shift_y = (f64::from(a.cy) + f64::from(b.cy)) / 2.0;
    let shifted = |r: &RotatedBox| RotatedBox {
        cx: (f64::from(r.cx) - shift_x) as f32,
        cy: (f64::from(r.cy) - shift_y) as f32,
        ..*r
    };
    let (a, b) = (shifted(a), shifted(b));
    let area_a = a.w * a.h;
    let area_b = b.w * b.h;
    if !(area_a >= 1e-14 && area_b >= 1e-14) {
        return 0.0;
    }
    let inter = intersection(&a, &b);
    inter / (area_a + area_b - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(cx: f32, cy: f32, w: f32, h: f32, a: f32) -> RotatedBox {
        RotatedBox { cx, cy, w, h, a }
    }

    #[test]
    fn axis_aligned_overlaps_match_the_rectangle_formula() {
        let a = rb(0.0, 0.0, 4.0, 2.0, 0.0);
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        // Shifted by 2 along x: overlap 2 x 2 = 4, union 8 + 8 - 4.
        let b = rb(2.0, 0.0, 4.0, 2.0, 0.0);
        assert!((iou(&a, &b) - 4.0 / 12.0).abs() < 1e-6);
        assert_eq!(iou(&a, &rb(10.0, 0.0, 4.0, 2.0, 0.0)), 0.0);
        // A quarter turn swaps width and height: the same box as a 2 x 4 upright one.
        let turned = rb(0.0, 0.0, 4.0, 2.0, std::f32::consts::FRAC_PI_2);
        let upright = rb(0.0, 0.0, 2.0, 4.0, 0.0);
        assert!((iou(&turned, &upright) - 1.0).abs() < 1e-5);
        // Crossed: a 4 x 2 and a 2 x 4 box overlap in a 2 x 2 square.
        assert!((iou(&a, &upright) - 4.0 / 12.0).abs() < 1e-5);
    }

    #[test]
    fn a_square_turned_by_45_degrees_inside_another() {
        // Unit-diagonal diamond inside a 2 x 2 square: its area 2 lies wholly inside (area 4).
        let square = rb(0.0, 0.0, 2.0, 2.0, 0.0);
        let diamond = rb(
            0.0,
            0.0,
            2f32.sqrt(),
            2f32.sqrt(),
            std::f32::consts::FRAC_PI_4,
        );
        assert!(
            (iou(&square, &diamond) - 0.5).abs() < 1e-5,
            "{}",
            iou(&square, &diamond)
        );
        // Same size, turned by 45 degrees: an octagon of area 8 (sqrt 2 - 1).
        let turned = rb(0.0, 0.0, 2.0, 2.0, std::f32::consts::FRAC_PI_4);
        let inter = 8.0 * (2f32.sqrt() - 1.0);
        let want = inter / (8.0 - inter);
        assert!((iou(&square, &turned) - want).abs() < 1e-5);
    }

    #[test]
    fn degenerate_boxes_do_not_panic() {
        let a = rb(0.0, 0.0, 2.0, 2.0, 0.0);
        for b in [
            rb(0.0, 0.0, 0.0, 0.0, 0.0),
            rb(f32::NAN, 0.0, 1.0, 1.0, 0.0),
            rb(0.0, 0.0, f32::INFINITY, 1.0, 0.3),
            rb(0.0, 0.0, -2.0, -2.0, 0.0),
            rb(1e30, -1e30, 1e30, 1e30, 1e30),
        ] {
            let v = iou(&a, &b);
            assert!(v.is_nan() || v.is_finite() || v.is_infinite());
        }
        assert_eq!(hull_area(&[Pt::default(); 5]), 0.0);
    }
}
