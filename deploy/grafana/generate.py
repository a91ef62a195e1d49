#!/usr/bin/env python3
"""Writes dashboards/*.json. Panels read the recorded series of deploy/prometheus/recording.yml
and the real metric names of metrics/README.md. Edit here, run, commit the JSON."""
import json, os

DS = {"type": "prometheus", "uid": "embed-prometheus"}

def panel(pid, title, exprs, unit="short", x=0, y=0, w=12, h=8, kind="timeseries"):
    return {
        "id": pid, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l}
                    for i, (e, l) in enumerate(exprs)],
    }

def dashboard(uid, title, rows):
    panels, y = [], 0
    for i in range(0, len(rows), 2):
        for j, r in enumerate(rows[i:i + 2]):
            panels.append(panel(len(panels) + 1, r[0], r[1], r[2] if len(r) > 2 else "short", x=12 * j, y=y))
        y += 8
    return {"uid": uid, "title": title, "tags": ["embed"], "timezone": "browser",
            "schemaVersion": 38, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "panels": panels,
            "templating": {"list": []}, "annotations": {"list": []}}

D = {
 "overview": dashboard("embed-overview", "Embedding service: overview", [
   ("Requests/s by method", [('sum by (method) (embed:grpc_server_requests:rate5m{job="embedd"})', "{{method}}")], "reqps"),
   ("p95 latency by method", [('embed:grpc_server_request_duration_seconds:p95_5m{job="embedd"}', "{{method}}")], "s"),
   ("Server error ratio", [('embed:grpc_server_requests:error_ratio_5m{job="embedd"}', "{{method}}")], "percentunit"),
   ("Overload rejections ratio", [('embed:grpc_server_requests:resource_exhausted_ratio_5m{job="embedd"}', "{{method}}")], "percentunit"),
   ("Targets up", [('up{job=~"embedd|gpu-worker"}', "{{job}} {{instance}}")]),
   ("Open breakers", [('sum by (instance) (embed_grpc_client_breaker_state{state="open"})', "{{instance}}")]),
 ]),
 "api": dashboard("embed-api", "Embedding service: API (gRPC)", [
   ("Requests/s by code", [('sum by (code) (embed:grpc_server_requests:rate5m{job="embedd"})', "{{code}}")], "reqps"),
   ("Latency p50/p95/p99 (Embed)", [
      ('embed:grpc_server_request_duration_seconds:p50_5m{method="Embed"}', "p50"),
      ('embed:grpc_server_request_duration_seconds:p95_5m{method="Embed"}', "p95"),
      ('embed:grpc_server_request_duration_seconds:p99_5m{method="Embed"}', "p99")], "s"),
   ("Stream messages/s", [('sum by (method, direction) (rate(embed_grpc_server_stream_messages_total[5m]))', "{{method}} {{direction}}")], "ops"),
   ("Latency p95 (Rerank)", [('embed:grpc_server_request_duration_seconds:p95_5m{method="Rerank"}', "p95")], "s"),
   ("Process resident memory", [('process_resident_memory_bytes{job=~"embedd|gpu-worker"}', "{{job}} {{instance}}")], "bytes"),
   ("Process CPU", [('rate(process_cpu_seconds_total{job=~"embedd|gpu-worker"}[5m])', "{{job}} {{instance}}")], "percentunit"),
 ]),
 "workers": dashboard("embed-workers", "Embedding service: workers and GPU", [
   ("Worker calls/s by endpoint and code", [('sum by (endpoint, code) (embed:grpc_client_calls:rate5m)', "{{endpoint}} {{code}}")], "reqps"),
   ("Worker call p95", [('embed:grpc_client_call_duration_seconds:p95_5m', "{{endpoint}} {{method}}")], "s"),
   ("Breaker state (1 = current)", [('embed_grpc_client_breaker_state == 1', "{{endpoint}} {{state}}")]),
   ("Retries/s", [('sum by (endpoint) (rate(embed_grpc_client_retries_total[5m]))', "{{endpoint}}")], "ops"),
   ("GPU memory utilisation", [('embed:gpu_memory:utilization', "{{instance}} {{device}}")], "percentunit"),
   ("Forward p95", [('embed:gpu_forward_duration_seconds:p95_5m', "{{instance}} {{device}}")], "s"),
   ("Average batch size (sequences)", [('embed:gpu_batch_size_sequences:avg_5m', "{{instance}} {{device}}")]),
   ("Padding waste", [('embed:gpu_padding_waste:ratio_5m', "{{instance}} {{device}}")], "percentunit"),
   ("Queue depth (requests)", [('embed_gpu_queue_depth_requests', "{{instance}} {{device}}")]),
   ("Sequences/s", [('embed:gpu_sequences:rate5m', "{{instance}} {{model}}")], "ops"),
   ("Model load seconds", [('embed_gpu_model_load_seconds', "{{instance}} {{model}}")], "s"),
   ("Model info", [('embed_gpu_model_info', "{{instance}} {{device}} {{model}} {{dtype}}")]),
 ]),
 "pipeline": dashboard("embed-pipeline", "Embedding service: pipeline", [
   ("Stage executions/s by outcome", [('sum by (stage, outcome) (embed:pipeline_stage_executions:rate5m)', "{{stage}} {{outcome}}")], "ops"),
   ("Stage p95", [('embed:pipeline_stage_duration_seconds:p95_5m', "{{stage}}")], "s"),
   ("In flight", [('embed_pipeline_in_flight_requests', "{{instance}} {{pipeline}}")]),
   ("Queue depth by stage", [('embed_pipeline_queue_depth', "{{instance}} {{stage}}")]),
 ]),
 "cache": dashboard("embed-cache", "Embedding service: cache", [
   ("Hit ratio (5m)", [('embed:cache_lookups:hit_ratio_5m', "{{tier}}")], "percentunit"),
   ("Lookups/s", [('embed:cache_lookups:rate5m', "{{tier}}")], "ops"),
   ("Entries", [('embed_cache_entries', "{{instance}} {{tier}}")]),
   ("Bytes", [('embed_cache_size_bytes', "{{instance}} {{tier}}")], "bytes"),
   ("Evictions/s", [('sum by (tier, reason) (rate(embed_cache_evictions_total[5m]))', "{{tier}} {{reason}}")], "ops"),
   ("Errors/s", [('sum by (tier, operation) (rate(embed_cache_errors_total[5m]))', "{{tier}} {{operation}}")], "ops"),
 ]),
 "reranking": dashboard("embed-reranking", "Embedding service: reranking", [
   ("Requests/s by outcome", [('sum by (model, outcome) (rate(embed_rerank_requests_total[5m]))', "{{model}} {{outcome}}")], "reqps"),
   ("Rerank p95", [('embed:rerank_duration_seconds:p95_5m', "{{model}}")], "s"),
   ("Pairs scored/s", [('embed:rerank_pairs:rate5m', "{{model}}")], "ops"),
   ("Pairs per request (avg)", [('sum by (model) (rate(embed_rerank_batch_size_pairs_sum[5m])) / sum by (model) (rate(embed_rerank_batch_size_pairs_count[5m]))', "{{model}}")]),
   ("Score distribution", [('sum by (le) (increase(embed_rerank_score_bucket[1h]))', "{{le}}")]),
 ]),
}

here = os.path.dirname(os.path.abspath(__file__))
for name, d in D.items():
    with open(os.path.join(here, "dashboards", name + ".json"), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
