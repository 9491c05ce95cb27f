// Package plots draws paper-style figures of a sweep's results and writes
// the sweep's HTML report.
//
// Everything reads a results folder (see package results): trials.parquet,
// steps.parquet, spectra.parquet and manifest.json; a sweep that has not
// been compacted is read from its shards. Statistics come from package
// analysis: every point is the mean over seeds with a 95% CI
// (analysis.Summarize, Summary.Interval): the Student-t interval below 5
// seeds, where the bootstrap's resamples take too few values and its
// interval is too narrow, the percentile bootstrap's from 5; captions and
// table tooltips say which. The forgetting laws are analysis fits
// (analysis.FitForm) with bootstrap CIs, held to the rule `bench fit`
// applies (analysis.CheckData, Fit.Accept): a degenerate fit (R² below
// 0.5, a zero-width interval) is warned about and its curve not drawn.
//
// Where the trials record the base model before fine-tuning (the extra
// metrics target_metric_before and target_loss_before, the columns
// retain_*_before, refusal_base; forgetting is 0 by definition), figures
// draw it as the step-0 reference: a cross at step 0 and a dotted line on
// the learning curves, the base point on learn-forget and safety, a
// dotted line on metric-vs-rank and efficiency. Trials of one task that
// disagree on the base value (different task options) get no reference.
//
// # Figures
//
// A point is a configuration (Cell): task, method, rank and every other
// setting of the trial config but the seed (ConfigPairs), its seeds giving
// the CI; a sweep over learning rates is never pooled as seeds. Lines are
// per method, α rule (α = 2r, α = 8) and setting swept within a rank
// (full fine-tuning's learning rates), each after a method's first in its
// own dash and marker, labelled "lora α=8", "full lr=1e-4".
//
// Write draws, per task, into DIR/figures/<kind>-<task>.<png|svg|pdf>:
//
//   - metric-vs-rank: target metric vs rank (log₂ axis), one line per
//     method and setting with a CI band; methods without a rank (full
//     fine-tuning) as a dashed reference line with its band per setting.
//   - learn-forget: target metric vs forgetting per configuration, CIs in
//     both axes, ranks (or full fine-tuning's learning rates, joined as its
//     curve) labelled, the Pareto front dashed (the view of Biderman et al.
//     2024, "LoRA Learns Less and Forgets Less").
//   - curves: the (split, metric) series of steps.parquet over steps, one
//     panel each (at most six, train first), one line per method at its
//     highest rank.
//   - spectrum: the top singular values of one layer, base W₀ vs tuned W,
//     one panel per method at its lowest rank (first seed), intruder
//     dimensions at the ε nearest 0.5 ringed. The layer shown is the one
//     with the most intruders.
//   - maxcos: a heatmap of max_i |cos(u_j, u⁰_i)| per configuration row
//     and tuned direction j, averaged over layers and seeds. spectra.parquet
//     keeps only this maximum per tuned vector, not the full tuned × base
//     cosine matrix, so this is the heatmap the table supports; it is the
//     quantity intruder detection thresholds.
//   - intruders: intruder count vs rank, one line per method, α rule and
//     setting, one panel per ε.
//   - intruders-matched: intruder count (ε nearest 0.5) vs rank at matched
//     target loss, the comparison of Shuttleworth et al. 2024: each
//     configuration's runs over the learning rate form a curve per seed,
//     read at each full fine-tuning run's target loss (analysis.ReadAt),
//     one panel per loss. Needs full fine-tuning and a learning-rate axis.
//   - forgetting-law: forgetting vs trainable parameters P (fit
//     L_f = c + A·P^α), vs steps N (L_f = c + A·N^β) and vs fine-tuning loss
//     (L_f = a − b·L_ft), the fitted law over the points (Kalajdzievski
//     2024); and the joint law L_f = c + A·P^α·N^β on log–log axes against
//     A·P^α·N^β at the fitted parameters, where the points fall on c + x
//     when the law holds, its title giving α, β and R². When N is the same for every trial, the N panel uses the
//     forgetting logged during training (metric "forgetting" in
//     steps.parquet). A panel needs ≥ 3 distinct predictor values.
//   - efficiency: target metric vs trainable parameters (log axis), the
//     frontier dashed.
//   - safety: refusal retention (extra metric refusal_retention of the
//     safety-guard task) vs target metric.
//
// A figure whose data is absent is skipped with a reason (Skip), never
// drawn empty.
//
// Each figure kind is one file, fig_<kind>.go, holding its build function
// and one registration line in an init (register(kind{order, name,
// summary, build})); order places it in the report and `bench plot`'s
// help. A kind that only some tasks have data for (safety) sets few, the
// one skip reason when no task has any, instead of a skip per task. Shared
// panels (a metric against rank, a scatter per configuration) are in
// panels.go; grouping trials into configurations, the settings that vary,
// learning-rate curves and the metrics by name come from package configs.
//
// # Style
//
// Figures are one column (3.5 in) or one page (7 in) wide with 7–9 pt
// Liberation Sans text, so they are readable at print size. Each method
// has a fixed colour, marker and dash pattern in every figure (MethodStyle):
// every shipped method from a table over the Okabe–Ito colour-blind-safe
// palette (the batch-A methods dotted), others from a hash of the name. Legends sit above the
// panels, never over data. Heatmaps use viridis.
//
// # Report
//
// WriteReport writes DIR/report.html, one self-contained file (figures as
// PNG data URIs, no network): provenance from manifest.json, a table per
// task of mean ± 95% CI half-width per configuration with the best value
// per column marked, the law fits with CIs, every figure with a caption,
// the skipped figures, the failed and diverged trials with their reasons,
// and relative links to the Parquet tables.
//
// Its Pareto view (pareto.go) lets the reader pick any two numeric columns
// of the registry (configs.Numeric, the intruder counts, other extra
// metrics) and draws one point per configuration, the mean over seeds, in
// its method's colour and marker, with the Pareto front by each column's
// direction (none where a direction is unknown). A filter box keeps the
// table rows and points whose task, method, rank and settings contain
// every word typed. The data is inline JSON, the drawing inline JavaScript
// writing SVG; the view's state is the URL fragment
// (#task=T&x=COLUMN&y=COLUMN&filter=WORDS), applied on load through the
// controls' own events, which is how the browser test drives it.
package plots
