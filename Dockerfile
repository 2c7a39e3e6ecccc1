# syntax=docker/dockerfile:1
# Moldau in a small image: a static binary on distroless (no shell, no package manager), run as
# the non-root user 65532, data in the volume /var/lib/kafka/data (Confluent's path).
#
#   docker build -t moldau .
#   docker run -d --name moldau -p 9092:9092 -p 8080:8080 moldau   # clients on localhost:9092,
#                                                        # console on http://localhost:8080/
#   docker exec moldau kafka-topics --bootstrap-server localhost:9092 --list
#
# Configured like apache/kafka's and Confluent's images: every KAFKA_* variable sets a broker key
# (KAFKA_ADVERTISED_LISTENERS -> advertised.listeners), CLUSTER_ID the cluster id; see
# docker-compose.yml and docker-compose.cluster.yml. Kafka's tool names (kafka-topics,
# kafka-console-producer, ...) are links to the binary, on PATH and as /opt/kafka/bin/*.sh.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/usr/local/bin/moldau ./cmd/moldau
# The links come from the binary itself (moldau tools), so a new tool needs no change here.
RUN set -eu; mkdir -p /out/opt/kafka/bin /data/var/lib/kafka/data; \
    for t in $(/out/usr/local/bin/moldau tools); do \
      ln -s moldau "/out/usr/local/bin/$t"; \
      ln -s /usr/local/bin/moldau "/out/opt/kafka/bin/$t.sh"; \
    done

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /data/ /
USER 65532:65532
# One node reachable from the host when run with -p 9092:9092 and no other settings; compose
# files set every listener themselves.
# The HTTP listener (web console, admin API, /metrics, /healthz, /readyz) binds every interface
# in the container, so that -p 8080:8080 reaches it; it has no TLS or authentication yet.
ENV KAFKA_LISTENERS=PLAINTEXT://:9092 \
    KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092 \
    KAFKA_LOG_DIRS=/var/lib/kafka/data \
    MOLDAU_HTTP_LISTENER=0.0.0.0:8080
VOLUME /var/lib/kafka/data
EXPOSE 9092 8080
# SIGTERM (docker stop) makes a controlled shutdown: leaderships move away first.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/moldau"]
CMD ["server"]
