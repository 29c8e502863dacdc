// Exercises web/stockfeed-client.js against a live tile server and prints the results as JSON.
// test_clients.py runs it with one JSON argument and checks the output:
// {"base", "lat", "lng", "radiusM", "sido", "sigungu", "missingSigungu", "forbiddenBase"}.
import {
  StockfeedClient,
  coveringTileIds,
  isAvailable,
  stockKnown,
} from "../../../web/stockfeed-client.js";

const query = JSON.parse(process.argv[2]);
let clock = 1_000_000;
const client = new StockfeedClient(query.base, { now: () => clock });
const output = {};

const near = await client.storesNear(query.lat, query.lng, query.radiusM);
output.near = near.map((store) => ({
  code: store.code,
  distance_m: store.distance_m,
  remain_stat: store.remain_stat,
  available: isAvailable(store),
  known: stockKnown(store),
}));
output.coveringTiles = coveringTileIds(query.lat, query.lng, query.radiusM);
output.afterNear = { ...client.stats };

const region = await client.region(query.sido, query.sigungu);
output.region = region.map((store) => store.code);
output.afterRegion = { ...client.stats };

await client.region(query.sido, query.sigungu);
output.withinMaxAge = { ...client.stats };

clock += 10 * 60 * 1000;
const again = await client.region(query.sido, query.sigungu);
output.afterMaxAge = { ...client.stats };
output.revalidatedCodes = again.map((store) => store.code);

output.missing = await client.region(query.sido, query.missingSigungu);
output.afterMissing = { ...client.stats };

const forbidden = new StockfeedClient(query.forbiddenBase, { now: () => clock });
output.forbidden = await forbidden.region(query.sido, query.sigungu);
output.forbiddenStats = { ...forbidden.stats };

try {
  await client.storesNear(query.lat, query.lng, 20000);
  output.largeRadius = "accepted";
} catch (error) {
  output.largeRadius = error.name;
}

const broken = new StockfeedClient(query.brokenBase, { now: () => clock });
try {
  await broken.region(query.sido, query.sigungu);
  output.serverError = "accepted";
} catch (error) {
  output.serverError = error.name;
}

console.log(JSON.stringify(output));
