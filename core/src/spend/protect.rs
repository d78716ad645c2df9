//! Protecting spend cells as official statistics protect turnover (magnitude tables):
//! primary suppression (the visitor row, the number of merchants, the p % rule), then
//! complementary suppression until no withheld cell can be computed exactly from the
//! released cells and the sums that tie them (totals, category unions).
//!
//! A cell's linear ties are *lines*: a total equal to the sum of its members (a group's
//! origin rows to its total, its shop categories to their total, a category union's
//! member zones to the union). Two passes:
//! 1. every line with exactly one withheld cell gets a second one (its smallest released
//!    non-empty member, else its total), until none is left;
//! 2. an exact audit: the withheld cells of each set of lines that share cells are the
//!    unknowns of those lines' equations; a withheld cell whose value every solution
//!    agrees on (its column of the reduced system has no free part) is recoverable, and
//!    the smallest released non-empty cell of one of its lines is withheld too. Repeated
//!    until none is recoverable.

use std::collections::BTreeSet;

use serde::Serialize;

/// Why a cell was withheld first (the report counts cells by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Primary {
    /// Its visitor row is not released (or there is none).
    VisitorRow,
    /// Fewer merchants than the minimum.
    FewMerchants,
    /// The p % rule: the merchants after the two largest hold less than p % of the
    /// largest.
    Dominance,
}

/// One spend cell as protection sees it.
#[derive(Clone, Debug, Default)]
pub(super) struct Cell {
    /// Spend in cents.
    pub cents: i64,
    /// The merchants' amounts in cents, largest first.
    pub merchants: Vec<i64>,
    /// Whether its visitor row is released.
    pub visitor_released: bool,
    /// Why it was withheld first, if it was.
    pub primary: Option<Primary>,
    /// Whether it is withheld (primary or complementary).
    pub suppressed: bool,
}

impl Cell {
    fn is_empty(&self) -> bool {
        self.merchants.is_empty()
    }
}

/// A total and the cells that sum to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Line {
    pub total: usize,
    pub members: Vec<usize>,
}

/// The rules' parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    /// p of the p % rule, in percent.
    pub p: f64,
    /// The fewest merchants a released non-empty cell has.
    pub min_merchants: usize,
}

/// What protection did, cell by cell counted once by its first reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpendCounts {
    /// Cells in the table.
    pub cells: u64,
    /// Cells released.
    pub released: u64,
    /// Cells withheld because their visitor row is not released.
    pub suppressed_visitor_row: u64,
    /// Cells withheld for having fewer merchants than the minimum.
    pub suppressed_few_merchants: u64,
    /// Cells withheld by the p % rule.
    pub suppressed_dominance: u64,
    /// Cells withheld so that another cannot be computed from its line's total.
    pub suppressed_complementary: u64,
}

/// Whether the p % rule lets a cell's merchants' amounts (largest first) be released:
/// the second largest merchant, subtracting its own amount from the total, must not
/// learn the largest's to within p %.
pub(super) fn passes_p_percent(merchants: &[i64], p: f64) -> bool {
    let Some(&largest) = merchants.first() else {
        return true;
    };
    let rest: i64 = merchants.iter().skip(2).sum();
    // Exact in f64 below 2^53 cents (90 trillion in the currency).
    100.0 * rest as f64 >= p * largest as f64
}

/// Withholds the cells the rules ask for, then their complements; returns the counts.
pub(super) fn protect(cells: &mut [Cell], lines: &[Line], rules: Rules) -> SpendCounts {
    let mut counts = SpendCounts {
        cells: cells.len() as u64,
        ..SpendCounts::default()
    };
    for cell in cells.iter_mut() {
        cell.primary = if !cell.visitor_released {
            Some(Primary::VisitorRow)
        } else if cell.is_empty() {
            None
        } else if cell.merchants.len() < rules.min_merchants {
            Some(Primary::FewMerchants)
        } else if !passes_p_percent(&cell.merchants, rules.p) {
            Some(Primary::Dominance)
        } else {
            None
        };
        cell.suppressed = cell.primary.is_some();
    }
    let lines_of = lines_of(lines, cells.len());
    pair_withheld_cells(cells, lines);
    loop {
        let recoverable = recoverable_cells(cells, lines, &lines_of);
        let mut withheld_any = false;
        for cell in recoverable {
            if cells[cell].suppressed
                && let Some(complement) = complement_for(cells, lines, &lines_of[cell])
            {
                cells[complement].suppressed = true;
                withheld_any = true;
            }
        }
        if !withheld_any {
            break;
        }
        pair_withheld_cells(cells, lines);
    }
    for cell in cells.iter() {
        match (cell.primary, cell.suppressed) {
            (Some(Primary::VisitorRow), _) => counts.suppressed_visitor_row += 1,
            (Some(Primary::FewMerchants), _) => counts.suppressed_few_merchants += 1,
            (Some(Primary::Dominance), _) => counts.suppressed_dominance += 1,
            (None, true) => counts.suppressed_complementary += 1,
            (None, false) => counts.released += 1,
        }
    }
    counts
}

/// The lines each of `cells` cells is in.
fn lines_of(lines: &[Line], cells: usize) -> Vec<Vec<usize>> {
    let mut of = vec![Vec::new(); cells];
    for (l, line) in lines.iter().enumerate() {
        of[line.total].push(l);
        for &member in &line.members {
            of[member].push(l);
        }
    }
    of
}

/// The first pass: no line keeps exactly one withheld cell.
fn pair_withheld_cells(cells: &mut [Cell], lines: &[Line]) {
    loop {
        let mut changed = false;
        for line in lines {
            let withheld = std::iter::once(line.total)
                .chain(line.members.iter().copied())
                .filter(|&c| cells[c].suppressed)
                .count();
            if withheld != 1 {
                continue;
            }
            let member = smallest_released(cells, line.members.iter().copied(), false);
            let chosen = member.or_else(|| {
                (!cells[line.total].suppressed && !cells[line.total].is_empty())
                    .then_some(line.total)
            });
            if let Some(chosen) = chosen {
                cells[chosen].suppressed = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The released cell of smallest spend among `candidates` (ties: the first), non-empty
/// unless `empty_too`.
fn smallest_released(
    cells: &[Cell],
    candidates: impl Iterator<Item = usize>,
    empty_too: bool,
) -> Option<usize> {
    candidates
        .filter(|&c| !cells[c].suppressed && (empty_too || !cells[c].is_empty()))
        .min_by_key(|&c| (cells[c].cents, c))
}

/// A released cell to withhold beside a recoverable one: the smallest non-empty member
/// or total of its lines, else an empty one.
fn complement_for(cells: &[Cell], lines: &[Line], its_lines: &[usize]) -> Option<usize> {
    let around = || {
        its_lines
            .iter()
            .flat_map(|&l| std::iter::once(lines[l].total).chain(lines[l].members.iter().copied()))
    };
    smallest_released(cells, around(), false).or_else(|| smallest_released(cells, around(), true))
}

/// The withheld cells whose value the released cells and the lines determine.
pub(super) fn recoverable_cells(
    cells: &[Cell],
    lines: &[Line],
    lines_of: &[Vec<usize>],
) -> Vec<usize> {
    let mut recoverable = Vec::new();
    let mut line_done = vec![false; lines.len()];
    for start in 0..lines.len() {
        if line_done[start] {
            continue;
        }
        // The lines tied to `start` through withheld cells, and those cells.
        let mut component_lines = vec![start];
        line_done[start] = true;
        let mut unknowns: BTreeSet<usize> = BTreeSet::new();
        let mut next = 0;
        while next < component_lines.len() {
            let line = &lines[component_lines[next]];
            next += 1;
            for cell in std::iter::once(line.total).chain(line.members.iter().copied()) {
                if cells[cell].suppressed && unknowns.insert(cell) {
                    for &other in &lines_of[cell] {
                        if !line_done[other] {
                            line_done[other] = true;
                            component_lines.push(other);
                        }
                    }
                }
            }
        }
        if unknowns.is_empty() {
            continue;
        }
        let unknowns: Vec<usize> = unknowns.into_iter().collect();
        let column = |cell: usize| unknowns.binary_search(&cell).ok();
        let mut matrix: Vec<Vec<f64>> = component_lines
            .iter()
            .map(|&l| {
                let mut row = vec![0.0; unknowns.len()];
                if let Some(j) = column(lines[l].total) {
                    row[j] -= 1.0;
                }
                for &member in &lines[l].members {
                    if let Some(j) = column(member) {
                        row[j] += 1.0;
                    }
                }
                row
            })
            .collect();
        for j in determined_columns(&mut matrix, unknowns.len()) {
            recoverable.push(unknowns[j]);
        }
    }
    recoverable
}

/// The columns of `matrix` whose unknown every solution of `matrix · x = b` agrees on:
/// pivot columns of the reduced row echelon form with no entry in a free column.
fn determined_columns(matrix: &mut [Vec<f64>], columns: usize) -> Vec<usize> {
    const EPSILON: f64 = 1e-9;
    let mut pivots: Vec<(usize, usize)> = Vec::new();
    let mut row = 0;
    for column in 0..columns {
        if row == matrix.len() {
            break;
        }
        let Some(best) = (row..matrix.len())
            .max_by(|&a, &b| matrix[a][column].abs().total_cmp(&matrix[b][column].abs()))
        else {
            break;
        };
        if matrix[best][column].abs() < EPSILON {
            continue;
        }
        matrix.swap(row, best);
        let pivot = matrix[row][column];
        for value in &mut matrix[row] {
            *value /= pivot;
        }
        let pivot_row = matrix[row].clone();
        for (r, other) in matrix.iter_mut().enumerate() {
            if r != row && other[column].abs() > EPSILON {
                let factor = other[column];
                for (value, &p) in other.iter_mut().zip(&pivot_row) {
                    *value -= factor * p;
                }
            }
        }
        pivots.push((row, column));
        row += 1;
    }
    let pivot_columns: BTreeSet<usize> = pivots.iter().map(|&(_, c)| c).collect();
    pivots
        .into_iter()
        .filter(|&(r, _)| {
            (0..columns)
                .filter(|c| !pivot_columns.contains(c))
                .all(|c| matrix[r][c].abs() < EPSILON)
        })
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(merchants: &[i64]) -> Cell {
        let mut merchants = merchants.to_vec();
        merchants.sort_unstable_by(|a, b| b.cmp(a));
        Cell {
            cents: merchants.iter().sum(),
            merchants,
            visitor_released: true,
            ..Cell::default()
        }
    }

    const RULES: Rules = Rules {
        p: 10.0,
        min_merchants: 3,
    };

    #[test]
    fn the_p_percent_rule_on_hand_computed_cells() {
        // A dominant merchant: the third holds 5 % of the largest.
        assert!(!passes_p_percent(&[100_000, 10_000, 5_000], 10.0));
        // Three equal merchants: the third holds 100 % of the largest.
        assert!(passes_p_percent(&[1_000, 1_000, 1_000], 10.0));
        // Exactly p %: released (the rule withholds below it).
        assert!(passes_p_percent(&[1_000, 500, 60, 40], 10.0));
        assert!(!passes_p_percent(&[1_000, 500, 60, 39], 10.0));
        // Two merchants never pass a positive p.
        assert!(!passes_p_percent(&[10, 10], 10.0));
        assert!(passes_p_percent(&[], 10.0));
    }

    #[test]
    fn a_lone_withheld_member_gets_the_smallest_released_member_as_complement() {
        // total = a + b + c; a is dominated, the total is not (after its two largest,
        // 5 000 + 9 000 + 18 000 ≥ 10 % of 100 000).
        let mut cells = vec![
            cell(&[100_000, 10_000, 5_000, 900, 800, 700]),
            cell(&[100_000, 10_000, 5_000]),
            cell(&[3_000, 3_000, 3_000]),
            cell(&[6_000, 6_000, 6_000]),
        ];
        cells[0].merchants = {
            let mut all: Vec<i64> = cells[1..]
                .iter()
                .flat_map(|c| c.merchants.clone())
                .collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            all
        };
        cells[0].cents = cells[0].merchants.iter().sum();
        let lines = [Line {
            total: 0,
            members: vec![1, 2, 3],
        }];
        let counts = protect(&mut cells, &lines, RULES);
        let withheld: Vec<bool> = cells.iter().map(|c| c.suppressed).collect();
        assert_eq!(withheld, [false, true, true, false]);
        assert_eq!(counts.suppressed_dominance, 1);
        assert_eq!(counts.suppressed_complementary, 1);
        assert_eq!(counts.released, 2);
    }

    #[test]
    fn a_line_with_one_member_withholds_its_total() {
        let mut cells = vec![cell(&[5, 5, 5]), cell(&[5, 5, 5])];
        cells[1].visitor_released = false;
        let lines = [Line {
            total: 0,
            members: vec![1],
        }];
        protect(&mut cells, &lines, RULES);
        assert!(cells.iter().all(|c| c.suppressed));
    }

    #[test]
    fn a_two_way_table_leaves_no_cell_recoverable() {
        // Rows r0, r1 and their total; columns c0, c1 and theirs: a 3 × 3 table with
        // margins, one dominated inner cell.
        let mut cells: Vec<Cell> = (0..9).map(|_| cell(&[50, 50, 50])).collect();
        cells[4] = cell(&[1_000, 1, 1]); // r1, c1
        let at = |r: usize, c: usize| r * 3 + c; // row 0 and column 0 are totals
        let mut lines = Vec::new();
        for k in 0..3 {
            lines.push(Line {
                total: at(0, k),
                members: vec![at(1, k), at(2, k)],
            });
            lines.push(Line {
                total: at(k, 0),
                members: vec![at(k, 1), at(k, 2)],
            });
        }
        let lines_of = lines_of(&lines, cells.len());
        protect(&mut cells, &lines, RULES);
        assert!(cells[4].suppressed);
        assert!(recoverable_cells(&cells, &lines, &lines_of).is_empty());
        assert!(cells.iter().filter(|c| c.suppressed).count() >= 4);
    }

    #[test]
    fn the_audit_finds_a_bridge_between_two_cycles() {
        // x0 + x1 = t0 and x1 + x2 = t1 with x0, x1, x2 withheld: none recoverable; with
        // a third line x1 = t2, x1 is.
        let mut cells: Vec<Cell> = (0..6).map(|_| cell(&[9, 9, 9])).collect();
        for c in &mut cells[..3] {
            c.suppressed = true;
        }
        let mut lines = vec![
            Line {
                total: 3,
                members: vec![0, 1],
            },
            Line {
                total: 4,
                members: vec![1, 2],
            },
        ];
        let lines_of = |lines: &[Line]| lines_of(lines, 6);
        assert!(recoverable_cells(&cells, &lines, &lines_of(&lines)).is_empty());
        lines.push(Line {
            total: 5,
            members: vec![1],
        });
        let mut found = recoverable_cells(&cells, &lines, &lines_of(&lines));
        found.sort_unstable();
        assert_eq!(found, [0, 1, 2]);
    }
}
