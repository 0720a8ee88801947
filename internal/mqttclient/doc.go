// Package mqttclient is a small MQTT 3.1.1 device client for load tools and
// tests: the packets an IoT Hub device sends (CONNECT with username and SAS
// password, PUBLISH QoS 0/1, PINGREQ, DISCONNECT), the ones it reads
// (CONNACK, PUBACK, PINGRESP, SUBACK, PUBLISH), and a Dialer for TCP, TLS
// and MQTT over WebSockets (/$iothub/websocket, subprotocol "mqtt").
//
// It is built for many thousands of connections in one process: packets
// are pre-encoded byte slices, a Conn keeps no read buffer (fixed headers
// are read into a small array, unknown payloads are discarded), and no
// goroutine runs unless the caller starts ReadLoop. It is not a general
// client: no QoS 2, no MQTT 5, no in-flight resend.
package mqttclient
