# Layer 2 of the hierarchy: the Python runtime every service image runs on. Each service
# runs as its own user in the `agile` group: its state folder (a volume, which takes
# this folder's owner and mode) is the group's to write.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 10001 agile \
 && useradd --system --uid 10001 --gid agile --home-dir /nonexistent --shell /usr/sbin/nologin agile \
 && install -d -o agile -g agile -m 2770 /var/lib/agile \
 && install -d -o agile -g agile -m 0755 /run/agile
