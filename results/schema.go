package results

import (
	"math"
	"time"
)

// The types below are the on-disk rows: their struct tags are the Parquet
// schemas documented in doc.go. The public rows (TrialRow, StepRow,
// SpectrumRow) use NaN and zero times for "absent"; these use nulls.

type trialRecord struct {
	Sweep           string  `parquet:"sweep,dict"`
	TrialID         string  `parquet:"trial_id"`
	PlanIndex       int64   `parquet:"plan_index"`
	Method          string  `parquet:"method,dict"`
	Rank            *int64  `parquet:"rank,optional"`
	Task            string  `parquet:"task,dict"`
	Seed            int64   `parquet:"seed"`
	Phase           *string `parquet:"phase,optional,dict"`
	Status          string  `parquet:"status,dict"`
	Error           *string `parquet:"error,optional"`
	Attempts        int64   `parquet:"attempts"`
	DivergedStep    *int64  `parquet:"diverged_step,optional"`
	TrainableParams int64   `parquet:"trainable_params"`
	TotalParams     int64   `parquet:"total_params"`
	Steps           int64   `parquet:"steps"`
	WallSeconds     float64 `parquet:"wall_seconds"`
	PeakMemBytes    int64   `parquet:"peak_mem_bytes"`

	TrainSeconds        *float64 `parquet:"train_seconds,optional"`
	ExamplesPerS        *float64 `parquet:"examples_per_s,optional"`
	TokensPerS          *float64 `parquet:"tokens_per_s,optional"`
	MsPerStep           *float64 `parquet:"ms_per_step,optional"`
	OptimizerStateBytes *int64   `parquet:"optimizer_state_bytes,optional"`
	AdapterBytes        *int64   `parquet:"adapter_bytes,optional"`
	ForwardMsUnmerged   *float64 `parquet:"forward_ms_unmerged,optional"`
	ForwardMsMerged     *float64 `parquet:"forward_ms_merged,optional"`
	MergeError          *float64 `parquet:"merge_error,optional"`

	TargetLoss         *float64 `parquet:"target_loss,optional"`
	TargetMetric       *float64 `parquet:"target_metric,optional"`
	TargetMetricName   *string  `parquet:"target_metric_name,optional,dict"`
	ValLoss            *float64 `parquet:"val_loss,optional"`
	ValMetric          *float64 `parquet:"val_metric,optional"`
	RetainLossBefore   *float64 `parquet:"retain_loss_before,optional"`
	RetainLossAfter    *float64 `parquet:"retain_loss_after,optional"`
	RetainMetricBefore *float64 `parquet:"retain_metric_before,optional"`
	RetainMetricAfter  *float64 `parquet:"retain_metric_after,optional"`
	Forgetting         *float64 `parquet:"forgetting,optional"`

	Intruders     []intruderRecord `parquet:"intruders,list"`
	EffectiveRank *float64         `parquet:"effective_rank,optional"`
	EnergyRank90  *float64         `parquet:"energy_rank_90,optional"`

	MitigateLambda *float64 `parquet:"mitigate_lambda,optional"`

	Extra map[string]float64 `parquet:"extra"`

	StartedAt *time.Time `parquet:"started_at,timestamp(microsecond:utc)"`
	EndedAt   *time.Time `parquet:"ended_at,timestamp(microsecond:utc)"`
	Host      string     `parquet:"host,dict"`
	Config    string     `parquet:"config"`
}

type intruderRecord struct {
	Epsilon float64 `parquet:"epsilon"`
	Count   int64   `parquet:"count"`
}

type stepRecord struct {
	TrialID string  `parquet:"trial_id,dict"`
	Step    int64   `parquet:"step"`
	Split   string  `parquet:"split,dict"`
	Metric  string  `parquet:"metric,dict"`
	Value   float64 `parquet:"value"`
}

type spectrumRecord struct {
	TrialID    string  `parquet:"trial_id,dict"`
	Layer      string  `parquet:"layer,dict"`
	SVIndex    int64   `parquet:"sv_index"`
	SigmaBase  float64 `parquet:"sigma_base"`
	SigmaTuned float64 `parquet:"sigma_tuned"`
	MaxCos     float64 `parquet:"max_cos"`
	Intruder   []bool  `parquet:"intruder,list"`
}

// nullable maps NaN to null; ±Inf are data and stay.
func nullable(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// nullableRank maps NaN and 0 to null: an effective rank of 0 means
// analysis has not filled it in.
func nullableRank(v float64) *float64 {
	if v == 0 {
		return nil
	}
	return nullable(v)
}

// nullableInt maps NaN and ±Inf to null, else v truncated: the byte
// counts, kept as float64 in TrialRow so that NaN can mean absent.
func nullableInt(v float64) *int64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	n := int64(v)
	return &n
}

func intOrNaN(p *int64) float64 {
	if p == nil {
		return math.NaN()
	}
	return float64(*p)
}

// nullableString maps "" to null.
func nullableString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// nullableRankInt maps rank 0 (a method without a rank) to null.
func nullableRankInt(r int64) *int64 {
	if r == 0 {
		return nil
	}
	return &r
}

func orZero(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

func orZeroTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

func toTrialRecord(r *TrialRow) trialRecord {
	rec := trialRecord{
		Sweep:           r.Sweep,
		TrialID:         r.TrialID,
		PlanIndex:       r.Index,
		Method:          r.Method,
		Rank:            nullableRankInt(r.Rank),
		Task:            r.Task,
		Seed:            r.Seed,
		Phase:           nullableString(configPhase(r.Config)),
		Status:          r.Status,
		Error:           nullableString(r.Error),
		Attempts:        r.Attempts,
		TrainableParams: r.TrainableParams,
		TotalParams:     r.TotalParams,
		Steps:           r.Steps,
		WallSeconds:     r.WallSeconds,
		PeakMemBytes:    r.PeakMemBytes,

		TrainSeconds:        nullable(r.TrainSeconds),
		ExamplesPerS:        nullable(r.ExamplesPerS),
		TokensPerS:          nullable(r.TokensPerS),
		MsPerStep:           nullable(r.MsPerStep),
		OptimizerStateBytes: nullableInt(r.OptimizerStateBytes),
		AdapterBytes:        nullableInt(r.AdapterBytes),
		ForwardMsUnmerged:   nullable(r.ForwardMsUnmerged),
		ForwardMsMerged:     nullable(r.ForwardMsMerged),
		MergeError:          nullable(r.MergeError),

		TargetLoss:         nullable(r.TargetLoss),
		TargetMetric:       nullable(r.TargetMetric),
		TargetMetricName:   nullableString(r.TargetMetricName),
		ValLoss:            nullable(r.ValLoss),
		ValMetric:          nullable(r.ValMetric),
		RetainLossBefore:   nullable(r.RetainLossBefore),
		RetainLossAfter:    nullable(r.RetainLossAfter),
		RetainMetricBefore: nullable(r.RetainMetricBefore),
		RetainMetricAfter:  nullable(r.RetainMetricAfter),
		Forgetting:         nullable(r.Forgetting),
		EffectiveRank:      nullableRank(r.EffectiveRank),
		EnergyRank90:       nullableRank(r.EnergyRank90),
		MitigateLambda:     nullable(r.MitigateLambda),
		StartedAt:          nullableTime(r.StartedAt),
		EndedAt:            nullableTime(r.EndedAt),
		Host:               r.Host,
		Config:             r.Config,
	}
	if r.Status == StatusDiverged {
		s := r.DivergedStep
		rec.DivergedStep = &s
	}
	if len(r.Intruders) > 0 {
		rec.Intruders = make([]intruderRecord, len(r.Intruders))
		for i, c := range r.Intruders {
			rec.Intruders[i] = intruderRecord{Epsilon: c.Epsilon, Count: c.Count}
		}
	}
	if len(r.Extra) > 0 {
		rec.Extra = r.Extra
	}
	return rec
}

func fromTrialRecord(rec *trialRecord) TrialRow {
	r := TrialRow{
		Sweep:           rec.Sweep,
		TrialID:         rec.TrialID,
		Index:           rec.PlanIndex,
		Method:          rec.Method,
		Rank:            orZero(rec.Rank),
		Task:            rec.Task,
		Seed:            rec.Seed,
		Phase:           orEmpty(rec.Phase),
		Status:          rec.Status,
		Error:           orEmpty(rec.Error),
		Attempts:        rec.Attempts,
		TrainableParams: rec.TrainableParams,
		TotalParams:     rec.TotalParams,
		Steps:           rec.Steps,
		WallSeconds:     rec.WallSeconds,
		PeakMemBytes:    rec.PeakMemBytes,

		TrainSeconds:        orNaN(rec.TrainSeconds),
		ExamplesPerS:        orNaN(rec.ExamplesPerS),
		TokensPerS:          orNaN(rec.TokensPerS),
		MsPerStep:           orNaN(rec.MsPerStep),
		OptimizerStateBytes: intOrNaN(rec.OptimizerStateBytes),
		AdapterBytes:        intOrNaN(rec.AdapterBytes),
		ForwardMsUnmerged:   orNaN(rec.ForwardMsUnmerged),
		ForwardMsMerged:     orNaN(rec.ForwardMsMerged),
		MergeError:          orNaN(rec.MergeError),

		TargetLoss:         orNaN(rec.TargetLoss),
		TargetMetric:       orNaN(rec.TargetMetric),
		TargetMetricName:   orEmpty(rec.TargetMetricName),
		ValLoss:            orNaN(rec.ValLoss),
		ValMetric:          orNaN(rec.ValMetric),
		RetainLossBefore:   orNaN(rec.RetainLossBefore),
		RetainLossAfter:    orNaN(rec.RetainLossAfter),
		RetainMetricBefore: orNaN(rec.RetainMetricBefore),
		RetainMetricAfter:  orNaN(rec.RetainMetricAfter),
		Forgetting:         orNaN(rec.Forgetting),
		EffectiveRank:      orNaN(rec.EffectiveRank),
		EnergyRank90:       orNaN(rec.EnergyRank90),
		MitigateLambda:     orNaN(rec.MitigateLambda),
		StartedAt:          orZeroTime(rec.StartedAt),
		EndedAt:            orZeroTime(rec.EndedAt),
		Host:               rec.Host,
		Config:             rec.Config,
	}
	if rec.DivergedStep != nil {
		r.DivergedStep = *rec.DivergedStep
	}
	if len(rec.Intruders) > 0 {
		r.Intruders = make([]IntruderCount, len(rec.Intruders))
		for i, c := range rec.Intruders {
			r.Intruders[i] = IntruderCount{Epsilon: c.Epsilon, Count: c.Count}
		}
	}
	if len(rec.Extra) > 0 {
		r.Extra = rec.Extra
	}
	return r
}

func toStepRecords(rows []StepRow) []stepRecord {
	recs := make([]stepRecord, len(rows))
	for i, s := range rows {
		recs[i] = stepRecord(s)
	}
	return recs
}

func fromStepRecords(recs []stepRecord) []StepRow {
	rows := make([]StepRow, len(recs))
	for i, s := range recs {
		rows[i] = StepRow(s)
	}
	return rows
}

func toSpectrumRecords(rows []SpectrumRow) []spectrumRecord {
	recs := make([]spectrumRecord, len(rows))
	for i, s := range rows {
		recs[i] = spectrumRecord{s.TrialID, s.Layer, s.Index, s.SigmaBase, s.SigmaTuned, s.MaxCos, s.Intruder}
	}
	return recs
}

func fromSpectrumRecords(recs []spectrumRecord) []SpectrumRow {
	rows := make([]SpectrumRow, len(recs))
	for i, s := range recs {
		rows[i] = SpectrumRow{s.TrialID, s.Layer, s.SVIndex, s.SigmaBase, s.SigmaTuned, s.MaxCos, s.Intruder}
	}
	return rows
}
