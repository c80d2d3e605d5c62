// The patient-condition rules the server checks, mirrored so the form can say what is wrong
// before anything is sent. Source of truth: domain/models/clinical.py (CLINICAL_RANGES, Sex,
// AgeBand, Consciousness) and domain/api/reservations.py (ConditionIn: chief_complaint ≤ 200,
// note ≤ 1000, suspected_category 1–27, diastolic not above systolic). Pre-KTAS 1–5 is the
// field `pre_ktas` (nullable). Keep this table in step with those files.

export const CLINICAL_RANGES = {
  systolic_bp: { min: 0, max: 300, integer: true, unit: "mmHg" },
  diastolic_bp: { min: 0, max: 200, integer: true, unit: "mmHg" },
  pulse: { min: 0, max: 300, integer: true, unit: "/min" },
  temperature: { min: 25.0, max: 45.0, integer: false, decimals: 1, unit: "°C" },
  respiratory_rate: { min: 0, max: 80, integer: true, unit: "/min" },
  spo2: { min: 0, max: 100, integer: true, unit: "%" },
};

export const VITALS = Object.keys(CLINICAL_RANGES);
export const SEXES = ["male", "female", "unknown"];
export const AGE_BANDS = ["under_1", "1_9", "10_19", "20_29", "30_39", "40_49", "50_59", "60_69", "70_79", "80_89", "90_plus", "unknown"];
export const CONSCIOUSNESS = ["alert", "verbal", "pain", "unresponsive"]; // AVPU
export const PRE_KTAS_LEVELS = [1, 2, 3, 4, 5];
export const CHIEF_COMPLAINT_MAX = 200;
export const NOTE_MAX = 1000;
export const SUSPECTED_CATEGORY_MIN = 1;
export const SUSPECTED_CATEGORY_MAX = 27;
export const MAX_HOSPITALS_PER_REQUEST = 3;

/**
 * Check a form's raw values (strings from inputs) and build the API's `condition`.
 * Returns {condition, errors}: errors maps a field (or "__all__") to i18n keys with params,
 * [{key, params}], and is empty when the condition can be sent.
 */
export function conditionFromForm(raw) {
  const errors = {};
  const fail = (field, key, params = {}) => (errors[field] ??= []).push({ key, params });
  const condition = {};

  for (const [field, allowed] of [["sex", SEXES], ["age_band", AGE_BANDS], ["consciousness", CONSCIOUSNESS]]) {
    const value = raw[field] ?? "";
    if (!value) fail(field, "form.error.required");
    else if (!allowed.includes(value)) fail(field, "form.error.choice");
    else condition[field] = value;
  }

  for (const [field, range] of Object.entries(CLINICAL_RANGES)) {
    const text = String(raw[field] ?? "").trim().replace(",", ".");
    if (text === "") {
      condition[field] = null;
      continue;
    }
    const number = Number(text);
    if (!Number.isFinite(number)) fail(field, "form.error.number");
    else if (range.integer && !Number.isInteger(number)) fail(field, "form.error.integer");
    else if (!range.integer && !new RegExp(`^-?\\d+(\\.\\d{1,${range.decimals}})?$`).test(text)) {
      fail(field, "form.error.decimals", { decimals: range.decimals });
    } else if (number < range.min || number > range.max) {
      fail(field, "form.error.range", { min: range.min, max: range.max, unit: range.unit });
    } else {
      // The API reads temperature as a decimal: send it as the string the crew typed.
      condition[field] = range.integer ? number : number.toFixed(range.decimals);
    }
  }
  if (
    condition.systolic_bp != null && condition.diastolic_bp != null &&
    condition.diastolic_bp > condition.systolic_bp
  ) {
    fail("diastolic_bp", "form.error.diastolic_above_systolic");
  }

  const complaint = String(raw.chief_complaint ?? "").trim();
  if (!complaint) fail("chief_complaint", "form.error.required");
  else if (complaint.length > CHIEF_COMPLAINT_MAX) fail("chief_complaint", "form.error.too_long", { max: CHIEF_COMPLAINT_MAX });
  else condition.chief_complaint = complaint;

  const category = String(raw.suspected_category ?? "");
  if (category === "") condition.suspected_category = null;
  else {
    const number = Number(category);
    if (!Number.isInteger(number) || number < SUSPECTED_CATEGORY_MIN || number > SUSPECTED_CATEGORY_MAX) fail("suspected_category", "form.error.choice");
    else condition.suspected_category = number;
  }

  const ktas = String(raw.pre_ktas ?? "");
  if (ktas === "") condition.pre_ktas = null;
  else if (!PRE_KTAS_LEVELS.includes(Number(ktas))) fail("pre_ktas", "form.error.choice");
  else condition.pre_ktas = Number(ktas);

  const note = String(raw.note ?? "").trim();
  if (note.length > NOTE_MAX) fail("note", "form.error.too_long", { max: NOTE_MAX });
  else condition.note = note;

  return { condition, errors };
}
