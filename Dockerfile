# Build stage: compile the TypeScript once, with the dev dependencies (typescript) that the image leaves out.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production PORT=3000
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
EXPOSE 3000
# node itself is PID 1 (exec form, no npm, no shell): `docker stop`'s SIGTERM reaches choreo, which
# drains its in-flight work and exits. Without DATABASE_URL it runs the embedded PostgreSQL, with its
# data in /app/.choreo (mount a volume there to keep it).
CMD ["node", "--max-semi-space-size=4", "dist/main.js"]
