# Test stand-in for the official `postgres` image (no registry here): Debian's PostgreSQL 15 on the local
# base, with the part of the official entrypoint the compose file relies on (POSTGRES_USER/PASSWORD/DB on
# first start, PGDATA=/var/lib/postgresql/data, `postgres` and `pg_isready` on PATH).
ARG BASE_IMAGE=airloop-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
