// A Qt 5 C++ client (Qt 5.12 or later, for QCborValue) of NestJS handlers served by
// nestjs-qt-transport's ServerQt.
//
//   g++ -std=c++17 -fPIC client.cpp $(pkg-config --cflags --libs Qt5Network) -o client
//   ./client tcp 127.0.0.1:3000 cbor
//   ./client local orders json
//
// Calls the handlers of test/e2e/fixtures/server-app.ts and prints one JSON line per result:
// a request, a streamed reply, an error reply, an event, and a request that shows the event
// arrived. Exits 1 on any failure, and after 10 seconds at the latest.
//
// It is event-driven (readyRead), as an application with an event loop is; client.py shows
// the blocking way. Packets are built as QCborMap and sent either as CBOR or, through
// QCborMap::toJsonObject(), as JSON. No moc is needed: slots are lambdas.
#include <QCborArray>
#include <QCborMap>
#include <QCborValue>
#include <QCoreApplication>
#include <QDataStream>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocalSocket>
#include <QTcpSocket>
#include <QTimer>

#include <cstdio>
#include <cstdlib>
#include <functional>

[[noreturn]] static void fail(const QString &message)
{
    std::fprintf(stderr, "client: %s\n", qPrintable(message));
    std::exit(1);
}

static void report(QJsonObject line)
{
    std::printf("%s\n", QJsonDocument(line).toJson(QJsonDocument::Compact).constData());
    std::fflush(stdout);
}

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() != 4 || !QStringList{"tcp", "local"}.contains(args[1])
        || !QStringList{"json", "cbor"}.contains(args[3]))
        fail("usage: client tcp HOST:PORT|local NAME json|cbor");
    const QString transport = args[1], address = args[2], codec = args[3];

    // Either socket is a QIODevice, and that is all the protocol needs.
    bool finished = false;
    auto lost = [&] {
        if (!finished)
            fail("the server closed the connection");
    };
    QTcpSocket tcp;
    QLocalSocket local;
    QIODevice *socket;
    if (transport == "tcp") {
        const int colon = address.lastIndexOf(':');
        tcp.connectToHost(address.left(colon), address.mid(colon + 1).toUShort());
        if (!tcp.waitForConnected(5000))
            fail("connect: " + tcp.errorString());
        QObject::connect(&tcp, &QTcpSocket::disconnected, lost);
        socket = &tcp;
    } else {
        local.connectToServer(address); // a name in the temp dir, or an absolute socket path
        if (!local.waitForConnected(5000))
            fail("connect: " + local.errorString());
        QObject::connect(&local, &QLocalSocket::disconnected, lost);
        socket = &local;
    }
    QTimer::singleShot(10000, [] { fail("no answer within 10000 ms"); });

    QDataStream out(socket); // for writing only
    QDataStream in(socket);  // for reading only (a waiting read transaction blocks writes)

    // One frame: QDataStream << QByteArray writes a 4-byte big-endian length, then the bytes.
    auto send = [&](const QCborMap &packet) {
        out << (codec == "cbor" ? packet.toCborValue().toCbor()
                                : QJsonDocument(packet.toJsonObject()).toJson(QJsonDocument::Compact));
    };

    const QString tag = QString("cpp-%1-%2-%3").arg(transport, codec).arg(app.applicationPid());
    struct Step
    {
        QString name, pattern;
        QCborValue data;
    };
    const QList<Step> steps{
        {"request", "sum", QCborArray{1, 2, 3, 4}},                              // (a)
        {"stream", "streaming", QCborArray{1, 2, 3}},                            // (b)
        {"error", "rpcError", QCborMap{{"code", "E_DEMO"}, {"message", "nope"}}}, // (c)
        {"event", "note", QCborMap{{"tag", tag}, {"text", "hello from C++"}}},   // (d)
        {"events", "events", tag}, // which events has the server seen?
    };
    int step = -1, id = 0;
    QJsonArray replies;

    auto request = [&] {
        replies = QJsonArray();
        const Step &s = steps[step];
        send(QCborMap{{"id", ++id}, {"pattern", s.pattern}, {"data", s.data}});
    };
    std::function<void()> next = [&] {
        if (++step == steps.size()) {
            finished = true;
            app.quit();
        } else if (steps[step].name == "event") { // no id: the server sends no reply
            const QCborMap event{{"pattern", steps[step].pattern}, {"data", steps[step].data}};
            send(event);
            report({{"step", "event"}, {"codec", codec}, {"sent", event.toJsonObject()}});
            next();
        } else {
            request();
        }
    };

    QObject::connect(socket, &QIODevice::readyRead, [&] {
        for (;;) { // one readyRead may bring several frames, or a part of one
            in.startTransaction();
            QByteArray frame;
            in >> frame;
            if (!in.commitTransaction())
                return; // wait for the rest
            // A reply uses the codec of its request; the first byte tells which it is.
            const QString replyCodec = frame.startsWith('{') ? "json" : "cbor";
            const QJsonObject reply = replyCodec == "json"
                    ? QJsonDocument::fromJson(frame).object()
                    : QCborValue::fromCbor(frame).toMap().toJsonObject();
            if (!reply.contains("id"))
                continue; // not a reply (the server's draining notice, say): ignore it
            if (replyCodec != codec)
                fail(QString("a %1 reply to a %2 request").arg(replyCodec, codec));
            if (reply.value("id").toInt() != id)
                fail("an unexpected reply: " + QString::fromUtf8(frame.toHex()));
            replies.append(reply);
            if (!reply.value("isDisposed").toBool() && !reply.contains("err"))
                continue; // more values of a stream follow
            if (steps[step].name == "events" && reply.value("response").toArray().isEmpty()) {
                QTimer::singleShot(50, request); // the event is still on its way: ask again
                continue;
            }
            report({{"step", steps[step].name}, {"codec", codec}, {"replies", replies}});
            next();
        }
    });

    next();
    return app.exec();
}
