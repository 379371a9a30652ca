//! A small layered ("Sugiyama") graph layout, enough for model plots: Graphviz's `dot` steps in
//! miniature, without the `dot` binary.
//!
//! 1. **Layering** by longest path: a node sits one rank below its lowest predecessor, so every
//!    edge points down (`TB`) or right (`LR`).
//! 2. Edges spanning several ranks get a **virtual node** per rank crossed, so they bend around
//!    boxes instead of through them.
//! 3. **Ordering** within ranks to reduce crossings: barycenter sweeps (down, then up), keeping
//!    the order with the fewest crossings seen.
//! 4. **Coordinates**: each node is pulled to the mean position of its neighbours, subject to
//!    a minimum gap between neighbours in a rank — a least-squares problem with ordering
//!    constraints, solved exactly by pool-adjacent-violators; a few sweeps down and up.
//!
//! `LR` is `TB` with the axes swapped.

/// The direction of the ranks: Keras's `rankdir`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RankDir {
    /// Top to bottom (`"TB"`, Keras's default): inputs at the top.
    #[default]
    TopBottom,
    /// Left to right (`"LR"`).
    LeftRight,
}

impl RankDir {
    /// `"TB"` or `"LR"` (case-insensitive), as Keras's `rankdir`.
    pub fn parse(s: &str) -> Option<RankDir> {
        match s.to_ascii_uppercase().as_str() {
            "TB" => Some(RankDir::TopBottom),
            "LR" => Some(RankDir::LeftRight),
            _ => None,
        }
    }

    /// `"TB"` or `"LR"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RankDir::TopBottom => "TB",
            RankDir::LeftRight => "LR",
        }
    }
}

/// A placed box: top-left corner and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxPos {
    /// Left side.
    pub x: f32,
    /// Top side.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl BoxPos {
    /// Whether two boxes overlap (touching sides do not count).
    pub fn overlaps(&self, o: &BoxPos) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// The result: each node's box, each edge's polyline (from the source's side to the target's),
/// each node's rank, and the picture size (with the margin).
#[derive(Clone, Debug)]
pub struct Layout {
    /// One box per node, in the order given.
    pub boxes: Vec<BoxPos>,
    /// One polyline per edge, in the order given; the last point touches the target box.
    pub edges: Vec<Vec<(f32, f32)>>,
    /// Each node's rank (0 = sources).
    pub ranks: Vec<usize>,
    /// Total width.
    pub width: f32,
    /// Total height.
    pub height: f32,
}

/// Spacing of a layout, in points.
#[derive(Clone, Copy, Debug)]
pub struct Spacing {
    /// Between ranks (Graphviz's `ranksep`, 0.5 inch).
    pub rank_sep: f32,
    /// Between neighbours in a rank (Graphviz's `nodesep`, 0.25 inch).
    pub node_sep: f32,
    /// Around the picture.
    pub margin: f32,
}

impl Default for Spacing {
    fn default() -> Self {
        Spacing {
            rank_sep: 36.0,
            node_sep: 18.0,
            margin: 8.0,
        }
    }
}

/// Lays out nodes of the given sizes (`(width, height)`) joined by directed edges
/// `(source, target)`. Edges must form a DAG (a cycle's back edges are ignored for ranking);
/// self-loops and out-of-range indices are ignored.
pub fn layout(
    sizes: &[(f32, f32)],
    edges: &[(usize, usize)],
    dir: RankDir,
    spacing: Spacing,
) -> Layout {
    let n = sizes.len();
    // Work in TB space: in LR the boxes are turned.
    let tb_sizes: Vec<(f32, f32)> = match dir {
        RankDir::TopBottom => sizes.to_vec(),
        RankDir::LeftRight => sizes.iter().map(|&(w, h)| (h, w)).collect(),
    };
    let valid: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    let ranks = longest_path_ranks(n, &valid);

    // Virtual nodes: chains for edges spanning more than one rank.
    let mut rank_of: Vec<usize> = ranks.clone();
    let mut width: Vec<f32> = tb_sizes.iter().map(|s| s.0).collect();
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let mut chains: Vec<Vec<usize>> = Vec::new(); // per edge: nodes from source to target
    for &(a, b) in edges {
        if a >= n || b >= n || a == b || ranks[b] <= ranks[a] {
            chains.push(vec![a.min(n.saturating_sub(1)), b.min(n.saturating_sub(1))]);
            continue;
        }
        let mut chain = vec![a];
        let mut prev = a;
        for r in ranks[a] + 1..ranks[b] {
            let v = rank_of.len();
            rank_of.push(r);
            width.push(0.0);
            segs.push((prev, v));
            chain.push(v);
            prev = v;
        }
        segs.push((prev, b));
        chain.push(b);
        chains.push(chain);
    }
    let total = rank_of.len();
    let nranks = rank_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); total];
    for &(a, b) in &segs {
        if !succs[a].contains(&b) {
            succs[a].push(b);
            preds[b].push(a);
        }
    }

    // Initial order: by index (the model's layer order), virtual nodes after.
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); nranks];
    for v in 0..total {
        order[rank_of[v]].push(v);
    }
    let mut best = order.clone();
    let mut best_cross = crossings(&best, &succs, total);
    for iter in 0..12 {
        let down = iter % 2 == 0;
        let ranks_iter: Vec<usize> = if down {
            (1..nranks).collect()
        } else {
            (0..nranks.saturating_sub(1)).rev().collect()
        };
        for r in ranks_iter {
            let fixed = if down { &order[r - 1] } else { &order[r + 1] };
            let mut pos = vec![0.0f32; total];
            for (i, &v) in fixed.iter().enumerate() {
                pos[v] = i as f32;
            }
            let neigh = if down { &preds } else { &succs };
            let mut keyed: Vec<(f32, usize, usize)> = order[r]
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ns = &neigh[v];
                    let key = if ns.is_empty() {
                        i as f32
                    } else {
                        ns.iter().map(|&u| pos[u]).sum::<f32>() / ns.len() as f32
                    };
                    (key, i, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[r] = keyed.into_iter().map(|k| k.2).collect();
        }
        let c = crossings(&order, &succs, total);
        if c < best_cross {
            best_cross = c;
            best = order.clone();
        }
    }
    let order = best;

    // Coordinates (centres) along the ranks.
    let sep = |a: usize, b: usize| {
        let virt = |v: usize| v >= n;
        let gap = if virt(a) && virt(b) {
            spacing.node_sep / 2.0
        } else {
            spacing.node_sep
        };
        (width[a] + width[b]) / 2.0 + gap
    };
    let mut x = vec![0.0f32; total];
    for row in &order {
        let mut at = 0.0;
        for (i, &v) in row.iter().enumerate() {
            if i > 0 {
                at += sep(row[i - 1], v);
            }
            x[v] = at;
        }
    }
    for iter in 0..8 {
        let down = iter % 2 == 0;
        let rs: Vec<usize> = if down {
            (0..nranks).collect()
        } else {
            (0..nranks).rev().collect()
        };
        for r in rs {
            let row = &order[r];
            let want: Vec<f32> = row
                .iter()
                .map(|&v| {
                    let ns: Vec<usize> = if down {
                        preds[v].clone()
                    } else {
                        succs[v].clone()
                    };
                    if ns.is_empty() {
                        x[v]
                    } else {
                        ns.iter().map(|&u| x[u]).sum::<f32>() / ns.len() as f32
                    }
                })
                .collect();
            let gaps: Vec<f32> = (1..row.len()).map(|i| sep(row[i - 1], row[i])).collect();
            let placed = place_in_order(&want, &gaps);
            for (&v, p) in row.iter().zip(placed) {
                x[v] = p;
            }
        }
    }
    let min_left = (0..total)
        .map(|v| x[v] - width[v] / 2.0)
        .fold(f32::INFINITY, f32::min);
    let shift = if min_left.is_finite() {
        spacing.margin - min_left
    } else {
        0.0
    };
    for v in x.iter_mut() {
        *v += shift;
    }

    // Rank positions (tops) along the other axis.
    let mut rank_h = vec![0.0f32; nranks];
    for v in 0..n {
        rank_h[ranks[v]] = rank_h[ranks[v]].max(tb_sizes[v].1);
    }
    let mut rank_top = vec![0.0f32; nranks];
    let mut at = spacing.margin;
    for r in 0..nranks {
        rank_top[r] = at;
        at += rank_h[r] + spacing.rank_sep;
    }
    let extent_main = if nranks > 0 {
        at - spacing.rank_sep + spacing.margin
    } else {
        2.0 * spacing.margin
    };
    let extent_cross = (0..total)
        .map(|v| x[v] + width[v] / 2.0)
        .fold(0.0f32, f32::max)
        + spacing.margin;

    // Boxes, vertically centred in their rank.
    let tb_boxes: Vec<BoxPos> = (0..n)
        .map(|v| {
            let (w, h) = tb_sizes[v];
            BoxPos {
                x: x[v] - w / 2.0,
                y: rank_top[ranks[v]] + (rank_h[ranks[v]] - h) / 2.0,
                w,
                h,
            }
        })
        .collect();

    // Ports: a node's out-edges leave its bottom spread by target position, in-edges enter its
    // top spread by source position.
    let port = |v: usize, e_other: &[(usize, f32)], other: usize| -> f32 {
        let b = &tb_boxes[v];
        let k = e_other.len();
        let i = e_other.iter().position(|&(o, _)| o == other).unwrap_or(0);
        let spread = (b.w * 0.6).min(40.0 * k as f32);
        if k <= 1 {
            b.x + b.w / 2.0
        } else {
            b.x + b.w / 2.0 - spread / 2.0 + spread * i as f32 / (k - 1) as f32
        }
    };
    let mut outs: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    let mut ins: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    for (ei, chain) in chains.iter().enumerate() {
        if chain.len() < 2 || n == 0 {
            continue;
        }
        let (a, b) = (chain[0], chain[chain.len() - 1]);
        let next = chain[1];
        let prev = chain[chain.len() - 2];
        outs[a].push((ei, x[next]));
        ins[b].push((ei, x[prev]));
    }
    for l in outs.iter_mut().chain(ins.iter_mut()) {
        l.sort_by(|p, q| p.1.total_cmp(&q.1).then(p.0.cmp(&q.0)));
    }
    let mut tb_edges: Vec<Vec<(f32, f32)>> = Vec::new();
    for (ei, chain) in chains.iter().enumerate() {
        if chain.len() < 2 || n == 0 {
            tb_edges.push(Vec::new());
            continue;
        }
        let (a, b) = (chain[0], chain[chain.len() - 1]);
        let ba = &tb_boxes[a];
        let bb = &tb_boxes[b];
        let mut pts = vec![(port(a, &outs[a], ei), ba.y + ba.h)];
        for &v in &chain[1..chain.len() - 1] {
            let r = rank_of[v];
            pts.push((x[v], rank_top[r]));
            pts.push((x[v], rank_top[r] + rank_h[r]));
        }
        pts.push((port(b, &ins[b], ei), bb.y));
        tb_edges.push(pts);
    }

    match dir {
        RankDir::TopBottom => Layout {
            boxes: tb_boxes,
            edges: tb_edges,
            ranks,
            width: extent_cross,
            height: extent_main,
        },
        RankDir::LeftRight => Layout {
            boxes: tb_boxes
                .iter()
                .map(|b| BoxPos {
                    x: b.y,
                    y: b.x,
                    w: b.h,
                    h: b.w,
                })
                .collect(),
            edges: tb_edges
                .into_iter()
                .map(|e| e.into_iter().map(|(x, y)| (y, x)).collect())
                .collect(),
            ranks,
            width: extent_main,
            height: extent_cross,
        },
    }
}

/// Longest-path ranks from the sources (Kahn's order; nodes left on a cycle get the rank of
/// their ranked predecessors).
fn longest_path_ranks(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indeg = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        succ[a].push(b);
        indeg[b] += 1;
    }
    let mut rank = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    while let Some(v) = queue.pop_front() {
        for &w in &succ[v] {
            rank[w] = rank[w].max(rank[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push_back(w);
            }
        }
    }
    rank
}

/// The number of crossings between consecutive ranks.
fn crossings(order: &[Vec<usize>], succs: &[Vec<usize>], total: usize) -> usize {
    let mut pos = vec![0usize; total];
    for row in order {
        for (i, &v) in row.iter().enumerate() {
            pos[v] = i;
        }
    }
    let mut count = 0;
    for row in order.iter().take(order.len().saturating_sub(1)) {
        let mut es: Vec<(usize, usize)> = Vec::new();
        for &v in row {
            for &w in &succs[v] {
                es.push((pos[v], pos[w]));
            }
        }
        for i in 0..es.len() {
            for j in i + 1..es.len() {
                let (a, b) = (es[i], es[j]);
                if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                    count += 1;
                }
            }
        }
    }
    count
}

/// Positions `p` closest (least squares) to `want` with `p[i+1] - p[i] >= gaps[i]`:
/// pool-adjacent-violators on `want[i] - offset[i]`.
fn place_in_order(want: &[f32], gaps: &[f32]) -> Vec<f32> {
    let mut offset = vec![0.0f32; want.len()];
    for i in 1..want.len() {
        offset[i] = offset[i - 1] + gaps[i - 1];
    }
    // Blocks of (sum, count).
    let mut blocks: Vec<(f32, usize)> = Vec::new();
    for (w, o) in want.iter().zip(&offset) {
        blocks.push((w - o, 1));
        while blocks.len() > 1 {
            let (s2, c2) = blocks[blocks.len() - 1];
            let (s1, c1) = blocks[blocks.len() - 2];
            if s1 / c1 as f32 > s2 / c2 as f32 {
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (s1 + s2, c1 + c2);
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(want.len());
    for (s, c) in blocks {
        for _ in 0..c {
            out.push(s / c as f32);
        }
    }
    out.iter().zip(&offset).map(|(y, o)| y + o).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pava_keeps_gaps_and_fits() {
        // Two nodes both wanting 0 with a gap of 10: split evenly around 0.
        assert_eq!(place_in_order(&[0.0, 0.0], &[10.0]), vec![-5.0, 5.0]);
        // Already apart: unchanged.
        assert_eq!(place_in_order(&[0.0, 20.0], &[10.0]), vec![0.0, 20.0]);
    }

    #[test]
    fn crossings_counted() {
        // 0,1 on rank 0; 2,3 on rank 1; edges 0->3, 1->2 cross once.
        let order = vec![vec![0, 1], vec![2, 3]];
        let succs = vec![vec![3], vec![2], vec![], vec![]];
        assert_eq!(crossings(&order, &succs, 4), 1);
    }
}
