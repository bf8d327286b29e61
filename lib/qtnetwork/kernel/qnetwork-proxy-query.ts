/** `QNetworkProxyQuery::QueryType`, with Qt's values. */
export enum QueryType {
  TcpSocket = 0,
  UdpSocket = 1,
  SctpSocket = 2,
  TcpServer = 100,
  UrlRequest = 101,
  SctpServer = 102,
}

/**
 * What a proxy is wanted for (Qt's QNetworkProxyQuery): a connection to a peer host and
 * port, or a server listening on a local port, with an optional protocol tag.
 */
export class QNetworkProxyQuery {
  static readonly QueryType = QueryType;

  private type: QueryType;
  private host: string;
  private peer: number;
  private local: number;
  private tag: string;

  /**
   * A query for a connection: `(hostName, port, protocolTag?, queryType = TcpSocket)`;
   * or, when the first argument is a number, for a server on that local port:
   * `(bindPort, protocolTag?, queryType = TcpServer)`, as Qt's constructors.
   */
  constructor(
    hostOrBindPort: string | number = '',
    portOrTag: number | string = -1,
    tagOrType: string | QueryType = '',
    queryType?: QueryType,
  ) {
    if (typeof hostOrBindPort === 'number') {
      this.host = '';
      this.peer = -1;
      this.local = hostOrBindPort;
      this.tag = typeof portOrTag === 'string' ? portOrTag : '';
      this.type = typeof tagOrType === 'number' ? tagOrType : (queryType ?? QueryType.TcpServer);
    } else {
      this.host = hostOrBindPort;
      this.peer = typeof portOrTag === 'number' ? portOrTag : -1;
      this.local = -1;
      this.tag = typeof tagOrType === 'string' ? tagOrType : '';
      this.type = typeof tagOrType === 'number' ? tagOrType : (queryType ?? QueryType.TcpSocket);
    }
  }

  /** The kind of query. */
  queryType(): QueryType {
    return this.type;
  }

  /** Sets the kind of query. */
  setQueryType(type: QueryType): void {
    this.type = type;
  }

  /** The peer's host name (or address text). */
  peerHostName(): string {
    return this.host;
  }

  /** Sets the peer's host name. */
  setPeerHostName(host: string): void {
    this.host = host;
  }

  /** The peer's port; -1 when not set. */
  peerPort(): number {
    return this.peer;
  }

  /** Sets the peer's port. */
  setPeerPort(port: number): void {
    this.peer = port;
  }

  /** The local port of a server query; -1 when not set. */
  localPort(): number {
    return this.local;
  }

  /** Sets the local port. */
  setLocalPort(port: number): void {
    this.local = port;
  }

  /** The protocol tag (e.g. "http"); "" when not set. */
  protocolTag(): string {
    return this.tag;
  }

  /** Sets the protocol tag. */
  setProtocolTag(tag: string): void {
    this.tag = tag;
  }
}
