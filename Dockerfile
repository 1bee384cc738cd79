FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
ENV NODE_ENV=production PORT=3000
EXPOSE 3000
# tsx runs the TypeScript sources as they are: what runs is what you read.
CMD ["npx", "tsx", "--max-semi-space-size=4", "src/main.ts"]
