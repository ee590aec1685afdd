//! The request statistics repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::request_stats::{Grain, RequestStats, StatsRow};

impl RequestStats for Sqlite {
    fn add_minutes<'a>(&'a self, rows: &'a [StatsRow]) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for row in rows {
                sqlx::query!(
                    "INSERT INTO request_stats_minute
                     (minute, route, status, protocol, requests, bytes, views, lat0, lat1, lat2, lat3, lat4, lat5, lat6, lat7, lat8, lat9, lat10, lat11)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                     ON CONFLICT (minute, route, status, protocol) DO UPDATE SET
                     requests = request_stats_minute.requests + excluded.requests,
                     bytes = request_stats_minute.bytes + excluded.bytes,
                     views = request_stats_minute.views + excluded.views,
                     lat0 = request_stats_minute.lat0 + excluded.lat0,
                     lat1 = request_stats_minute.lat1 + excluded.lat1,
                     lat2 = request_stats_minute.lat2 + excluded.lat2,
                     lat3 = request_stats_minute.lat3 + excluded.lat3,
                     lat4 = request_stats_minute.lat4 + excluded.lat4,
                     lat5 = request_stats_minute.lat5 + excluded.lat5,
                     lat6 = request_stats_minute.lat6 + excluded.lat6,
                     lat7 = request_stats_minute.lat7 + excluded.lat7,
                     lat8 = request_stats_minute.lat8 + excluded.lat8,
                     lat9 = request_stats_minute.lat9 + excluded.lat9,
                     lat10 = request_stats_minute.lat10 + excluded.lat10,
                     lat11 = request_stats_minute.lat11 + excluded.lat11",
                    row.at,
                    row.route,
                    row.status,
                    row.protocol,
                    row.requests,
                    row.bytes,
                    row.views,
                    row.latency[0],
                    row.latency[1],
                    row.latency[2],
                    row.latency[3],
                    row.latency[4],
                    row.latency[5],
                    row.latency[6],
                    row.latency[7],
                    row.latency[8],
                    row.latency[9],
                    row.latency[10],
                    row.latency[11],
                )
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    fn roll_up(&self, from: i64, to: i64) -> Fut<'_, ()> {
        Box::pin(async move {
            // `WHERE` before `ON CONFLICT` is what SQLite needs to parse an upsert from a SELECT.
            sqlx::query!(
                "INSERT INTO request_stats_hour
                 (hour, route, status, protocol, requests, bytes, views, lat0, lat1, lat2, lat3, lat4, lat5, lat6, lat7, lat8, lat9, lat10, lat11)
                 SELECT (minute / 3600) * 3600, route, status, protocol,
                 SUM(requests), SUM(bytes), SUM(views), SUM(lat0), SUM(lat1), SUM(lat2), SUM(lat3), SUM(lat4), SUM(lat5), SUM(lat6), SUM(lat7), SUM(lat8), SUM(lat9), SUM(lat10), SUM(lat11)
                 FROM request_stats_minute WHERE minute >= $1 AND minute < $2
                 GROUP BY 1, route, status, protocol
                 ON CONFLICT (hour, route, status, protocol) DO UPDATE SET
                 requests = excluded.requests, bytes = excluded.bytes, views = excluded.views,
                 lat0 = excluded.lat0, lat1 = excluded.lat1, lat2 = excluded.lat2, lat3 = excluded.lat3, lat4 = excluded.lat4, lat5 = excluded.lat5, lat6 = excluded.lat6, lat7 = excluded.lat7, lat8 = excluded.lat8, lat9 = excluded.lat9, lat10 = excluded.lat10, lat11 = excluded.lat11",
                from,
                to
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn prune(&self, minutes_before: i64, hours_before: i64) -> Fut<'_, u64> {
        Box::pin(async move {
            let minutes = sqlx::query!("DELETE FROM request_stats_minute WHERE minute < $1", minutes_before)
                .execute(&self.pool)
                .await?;
            let hours = sqlx::query!("DELETE FROM request_stats_hour WHERE hour < $1", hours_before)
                .execute(&self.pool)
                .await?;
            Ok(minutes.rows_affected() + hours.rows_affected())
        })
    }

    fn series(&self, grain: Grain, from: i64, to: i64, slot: i64) -> Fut<'_, Vec<StatsRow>> {
        let slot = slot.max(1);
        let hours = i64::from(grain == Grain::Hour);
        Box::pin(async move {
            // One query for both tables (a table name cannot be a parameter): the branch whose
            // constant condition is false is skipped before its loop starts.
            let rows = sqlx::query!(
                r#"SELECT (at / $1) * $1 AS "at!: i64", route AS "route!", status AS "status!",
                   protocol AS "protocol!", SUM(requests) AS "requests!: i64", SUM(bytes) AS "bytes!: i64",
                   SUM(views) AS "views!: i64",
                   SUM(lat0) AS "lat0!: i64",
                   SUM(lat1) AS "lat1!: i64",
                   SUM(lat2) AS "lat2!: i64",
                   SUM(lat3) AS "lat3!: i64",
                   SUM(lat4) AS "lat4!: i64",
                   SUM(lat5) AS "lat5!: i64",
                   SUM(lat6) AS "lat6!: i64",
                   SUM(lat7) AS "lat7!: i64",
                   SUM(lat8) AS "lat8!: i64",
                   SUM(lat9) AS "lat9!: i64",
                   SUM(lat10) AS "lat10!: i64",
                   SUM(lat11) AS "lat11!: i64"
                   FROM (SELECT minute AS at, route, status, protocol, requests, bytes, views, lat0, lat1, lat2, lat3, lat4, lat5, lat6, lat7, lat8, lat9, lat10, lat11
                         FROM request_stats_minute WHERE $4 = 0 AND minute >= $2 AND minute < $3
                         UNION ALL
                         SELECT hour AS at, route, status, protocol, requests, bytes, views, lat0, lat1, lat2, lat3, lat4, lat5, lat6, lat7, lat8, lat9, lat10, lat11
                         FROM request_stats_hour WHERE $4 = 1 AND hour >= $2 AND hour < $3)
                   GROUP BY 1, route, status, protocol ORDER BY 1"#,
                slot,
                from,
                to,
                hours
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| StatsRow {
                    at: r.at,
                    route: r.route,
                    status: r.status,
                    protocol: r.protocol,
                    requests: r.requests,
                    bytes: r.bytes,
                    views: r.views,
                    latency: [
                        r.lat0, r.lat1, r.lat2, r.lat3, r.lat4, r.lat5, r.lat6, r.lat7, r.lat8, r.lat9,
                        r.lat10, r.lat11,
                    ],
                })
                .collect())
        })
    }
}
