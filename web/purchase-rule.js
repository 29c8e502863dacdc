/**
 * Today's purchase rule, computed from the rules file that the operator publishes (rules.json).
 *
 * The date is taken in the rules' UTC offset (Korea Standard Time, +09:00), never in the
 * viewer's own time zone, so a phone abroad or a browser set to UTC shows the Korean day.
 * The module has no DOM code, so Node.js can test it directly.
 */

export const WEEKDAY_KEYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
export const RULES_SCHEMA = "stockfeed.rules.v1";
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** Parses "+09:00" into minutes east of UTC; throws RangeError for other text. */
export function parseUtcOffset(text) {
  const match = /^([+-])(\d{2}):(\d{2})$/.exec(text || "");
  if (!match) {
    throw new RangeError(`invalid utc_offset ${JSON.stringify(text)}: expected "+09:00"`);
  }
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  return match[1] === "-" ? -minutes : minutes;
}

/** Returns the calendar date and weekday (0 = Sunday) at `nowMs` in a fixed UTC offset. */
export function localDate(nowMs, offsetMinutes) {
  const shifted = new Date(nowMs + offsetMinutes * 60000);
  const year = shifted.getUTCFullYear();
  const month = shifted.getUTCMonth() + 1;
  const day = shifted.getUTCDate();
  const pad = (value) => String(value).padStart(2, "0");
  return {
    year,
    month,
    day,
    weekday: shifted.getUTCDay(),
    iso: `${year}-${pad(month)}-${pad(day)}`,
  };
}

function validateWeekdays(weekdays, index) {
  for (const key of WEEKDAY_KEYS) {
    const value = weekdays?.[key];
    const digits =
      Array.isArray(value) && value.every((d) => Number.isInteger(d) && d >= 0 && d <= 9);
    if (value !== "anyone" && !digits) {
      throw new RangeError(
        `purchase_rules[${index}].weekdays.${key} is invalid: expected a list of digits 0-9 or "anyone"`,
      );
    }
  }
}

/** Checks the shape of a rules document; throws RangeError naming the first invalid field. */
export function validateRules(rules) {
  if (rules?.schema !== RULES_SCHEMA) {
    throw new RangeError(
      `rules schema is ${JSON.stringify(rules?.schema)}, expected "${RULES_SCHEMA}"`,
    );
  }
  parseUtcOffset(rules.utc_offset);
  if (!(Number.isFinite(rules.stale_after_minutes) && rules.stale_after_minutes > 0)) {
    throw new RangeError("stale_after_minutes must be a positive number of minutes");
  }
  if (!Array.isArray(rules.purchase_rules)) {
    throw new RangeError("purchase_rules must be a list");
  }
  rules.purchase_rules.forEach((rule, index) => {
    if (!DATE_PATTERN.test(rule.valid_from || "")) {
      throw new RangeError(`purchase_rules[${index}].valid_from must be a date like 2020-03-09`);
    }
    if (rule.valid_until !== null && !DATE_PATTERN.test(rule.valid_until || "")) {
      throw new RangeError(`purchase_rules[${index}].valid_until must be a date or null`);
    }
    validateWeekdays(rule.weekdays, index);
  });
  return rules;
}

/** Returns the rule in force on an ISO date: the latest valid_from that covers it, or null. */
export function ruleForDate(rules, isoDate) {
  const covering = rules.purchase_rules.filter(
    (rule) =>
      rule.valid_from <= isoDate && (rule.valid_until === null || isoDate <= rule.valid_until),
  );
  covering.sort((a, b) => (a.valid_from < b.valid_from ? 1 : -1));
  return covering[0] ?? null;
}

/**
 * Returns today's rule at `nowMs`: { date, kind, digits, note }. `kind` is "digits" (only
 * birth years ending in `digits` may buy), "anyone", or "unpublished" when no rule covers the
 * date. Invalid rules throw RangeError.
 */
export function todaysPurchaseRule(rules, nowMs) {
  validateRules(rules);
  const date = localDate(nowMs, parseUtcOffset(rules.utc_offset));
  const rule = ruleForDate(rules, date.iso);
  if (rule === null) {
    return { date, kind: "unpublished", digits: [], note: null };
  }
  const today = rule.weekdays[WEEKDAY_KEYS[date.weekday]];
  if (today === "anyone") {
    return { date, kind: "anyone", digits: [], note: rule.note ?? null };
  }
  return { date, kind: "digits", digits: [...today], note: rule.note ?? null };
}
