// Computes today's purchase rule with web/purchase-rule.js for each case and prints JSON.
// test_purchase_rule.py passes one JSON argument: {"rules": {...}, "instants": ["ISO 8601", ...],
// "invalid": [{...rules}, ...]}. Invalid rule documents report the RangeError message.
import { todaysPurchaseRule } from "../../../web/purchase-rule.js";

const input = JSON.parse(process.argv[2]);
const results = input.instants.map((instant) => {
  const today = todaysPurchaseRule(input.rules, Date.parse(instant));
  return {
    instant,
    date: today.date.iso,
    weekday: today.date.weekday,
    kind: today.kind,
    digits: today.digits,
  };
});
const errors = input.invalid.map((rules) => {
  try {
    todaysPurchaseRule(rules, Date.parse("2020-03-17T12:00:00+09:00"));
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
});
console.log(JSON.stringify({ results, errors }));
