#!/bin/sh
# The post-mortem job of docker/compose.yml's cascade service: ingest the Maker ETH-B export and
# CoinGecko's hourly WETH prices into a log, publish the log to Kafka, replay the topic into a run
# file and write its report. The same script runs outside Docker against any broker (docs/kafka.md).
#
# Environment (defaults are the container's mounts):
#   CASCADE_DATA     the data directory (/data): maker-ethb/ and prices/coingecko-hourly/WETH_usd.csv
#   CASCADE_OUT      where the log, the run file and the report go (/out)
#   CASCADE_BROKERS  Kafka bootstrap servers (kafka:19092)
#   CASCADE_TOPIC    the topic (ethb)
set -eu

DATA="${CASCADE_DATA:-/data}"
OUT="${CASCADE_OUT:-/out}"
BROKERS="${CASCADE_BROKERS:-kafka:19092}"
TOPIC="${CASCADE_TOPIC:-ethb}"
LOG="$OUT/ethb"

# A re-run is safe: ingest skips sources the log already holds, and publish resumes after what the
# topic already holds.
cascade ingest --log "$LOG" --source maker-flipside "$DATA/maker-ethb"
cascade ingest --log "$LOG" --source price-csv "$DATA/prices/coingecko-hourly/WETH_usd.csv"
cascade stream publish "$LOG" --brokers "$BROKERS" --topic "$TOPIC"
cascade stream replay --brokers "$BROKERS" --topic "$TOPIC" --out "$OUT/history.json"
cascade report "$OUT/history.json" --out "$OUT/report/index.html"
