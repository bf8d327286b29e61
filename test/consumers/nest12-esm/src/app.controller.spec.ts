import { Test, TestingModule } from '@nestjs/testing';
import { QtContext } from 'nestjs-qt-transport';
import { QTcpSocket } from 'nestjs-qt-transport/qtnetwork';
import { AppController } from './app.controller.js';
import { AppService, Note } from './app.service.js';

describe('AppController', () => {
  let appController: AppController;
  let appService: AppService;

  beforeEach(async () => {
    const app: TestingModule = await Test.createTestingModule({
      controllers: [AppController],
      providers: [AppService],
    }).compile();

    appController = app.get<AppController>(AppController);
    appService = app.get<AppService>(AppService);
  });

  describe('root', () => {
    it('should return "Hello World!"', () => {
      expect(appController.getHello()).toBe('Hello World!');
    });
  });

  describe('note', () => {
    it('records the text, the pattern and the transport of its QtContext', () => {
      const notes: Note[] = [];
      appService.notes.subscribe((note) => notes.push(note));
      const ctx = new QtContext([
        new QTcpSocket(),
        'note',
        undefined,
        undefined,
      ]);
      appController.note('hello', ctx);
      expect(notes).toEqual([
        { text: 'hello', pattern: 'note', transport: 'tcp' },
      ]);
    });
  });
});
