# Layer 2 of the hierarchy: the Python runtime every service image runs on.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin agile \
 && install -d -o agile -g agile -m 0750 /var/lib/agile \
 && install -d -o agile -g agile -m 0755 /run/agile
