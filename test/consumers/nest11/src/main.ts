import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { connectQtMicroservices } from './qt-microservices';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  connectQtMicroservices(app, {
    port: Number(process.env.QT_PORT ?? 4000),
    name: process.env.QT_NAME ?? 'qt-consumer',
  });
  await app.startAllMicroservices();
  await app.listen(process.env.PORT ?? 3000);
}
bootstrap();
